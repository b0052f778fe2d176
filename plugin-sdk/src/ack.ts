import { PluginError } from './errors/index.js';

/** What happened to a delivered item. */
export type AckStatus = 'written' | 'skipped' | 'replaced';

/**
 * A handler's acknowledgement. The kernel advances a cursor only past items every destination acknowledged;
 * resolve only once the item is durably stored (or deliberately skipped).
 */
export interface Ack {
  readonly status: AckStatus;
  /** Where it landed: a file path, `table:key`, a URL. */
  readonly location?: string;
  /** Bytes stored, for streams. */
  readonly bytes?: number;
}

const STATUSES: readonly string[] = ['written', 'skipped', 'replaced'];

/** True when `value` is a well-formed Ack. */
export function isAck(value: unknown): value is Ack {
  if (typeof value !== 'object' || value === null) return false;
  const a = value as Record<string, unknown>;
  const keysOk = Object.keys(a).every((k) => k === 'status' || k === 'location' || k === 'bytes');
  return (
    keysOk &&
    typeof a.status === 'string' &&
    STATUSES.includes(a.status) &&
    (a.location === undefined || typeof a.location === 'string') &&
    (a.bytes === undefined || (typeof a.bytes === 'number' && Number.isSafeInteger(a.bytes) && a.bytes >= 0))
  );
}

/** Throws IC_ERR_PLUGIN_ACK_INVALID unless `value` is a well-formed Ack. */
export function checkAck(value: unknown, where: string): Ack {
  if (!isAck(value)) {
    throw new PluginError(
      'IC_ERR_PLUGIN_ACK_INVALID',
      `${where} resolved to ${JSON.stringify(value)}, not an Ack { status: written|skipped|replaced, location?, bytes? }`,
    );
  }
  return value;
}
