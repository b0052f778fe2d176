import type { Operation } from '@integration-client/schemas';

export type { Operation };

/** Every operation a destination can implement, in the order the host lists them. */
export const OPERATIONS = [
  'session-data',
  'session-recording',
  'command-shell-recording',
  'show-my-screen-recording',
  'presentation-data',
  'presentation-recording',
  'site-backup',
  'system-information',
] as const satisfies readonly Operation[];

/** Operations whose items carry a model object and its XML. */
export const DATA_OPERATIONS = [
  'session-data',
  'presentation-data',
  'system-information',
] as const satisfies readonly Operation[];

/** Operations whose items carry a byte stream (recordings and backups). */
export const STREAM_OPERATIONS = [
  'session-recording',
  'command-shell-recording',
  'show-my-screen-recording',
  'presentation-recording',
  'site-backup',
] as const satisfies readonly Operation[];

/** An operation whose item is a model object plus XML. */
export type DataOperation = (typeof DATA_OPERATIONS)[number];
/** An operation whose item is a byte stream. */
export type StreamOperation = (typeof STREAM_OPERATIONS)[number];

/** True when `value` names an operation. */
export function isOperation(value: unknown): value is Operation {
  return typeof value === 'string' && (OPERATIONS as readonly string[]).includes(value);
}

/** True for recordings and backups. */
export function isStreamOperation(op: Operation): op is StreamOperation {
  return (STREAM_OPERATIONS as readonly string[]).includes(op);
}
