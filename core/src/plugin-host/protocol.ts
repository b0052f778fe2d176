/**
 * The messages between the host and a destination's worker thread. One worker runs one destination instance;
 * items cross as structured clones, recordings and backups as byte streams over their own MessagePort with
 * credit-based flow control (see stream-bridge.ts). Errors cross as SerializedIcError, never as thrown objects.
 */
import type { MessagePort, TransferListItem } from 'node:worker_threads';
import type { Operation, PluginEntryFacts, SerializedIcError } from '@integration-client/plugin-sdk';

/** What a worker needs to load its plugin and create the instance (its `workerData`). */
export interface WorkerInit {
  /** The plugin package folder. */
  readonly packageDir: string;
  /**
   * The host's checked facts of the package (manifest, entry module). Given, the worker imports the entry and
   * checks its export only: the host ran the no-code checks, and the config is validated; running them again cost
   * every worker start ~100–200 ms (loading ajv and semver, compiling two schemas). Absent (a probe after an
   * install), the worker runs every check itself.
   */
  readonly package?: PluginEntryFacts;
  readonly pluginId: string;
  readonly operations: readonly Operation[];
  /** Validated config with defaults applied. */
  readonly config: Record<string, unknown>;
  readonly destinationName: string;
  readonly dataDir: string;
  readonly hostVersion: string;
  /** Log records below this level are dropped in the worker. */
  readonly logLevel: string;
  /** Only import the entry and check its export; create no instance (used after an install). */
  readonly probe?: boolean;
  /** Lower the worker thread's CPU priority by this much first (IsolationOptions.nice). */
  readonly nice?: number;
}

/** Host → worker. */
export type ToWorker =
  | {
      readonly t: 'call';
      readonly id: number;
      readonly item: Record<string, unknown>;
      /** The item's model (`session` / `presentation`) as JSON text, set on the item again in the worker. */
      readonly model?: ModelText;
      readonly stream?: MessagePort;
    }
  | { readonly t: 'check'; readonly id: number }
  | { readonly t: 'abort'; readonly id: number }
  | { readonly t: 'ping'; readonly id: number }
  | { readonly t: 'close'; readonly id: number };

/**
 * A session or presentation model crosses as JSON text, not as a structured clone: for the report parser's
 * models (strings, numbers, booleans, arrays and plain objects, no undefined values) both give the same object,
 * and JSON costs less on both sides — measured on 3,000 simulator sessions of 12 events: `JSON.stringify`
 * 22 µs vs structured-clone serialization 30 µs per session in the host, `JSON.parse` 19 µs vs deserialization
 * 37 µs in the worker. (The XML stays a plain string: a string is copied as it is either way.)
 */
export interface ModelText {
  readonly key: 'session' | 'presentation';
  readonly json: string;
}

/** Item fields whose value crosses as JSON text (see ModelText). */
export const MODEL_KEYS = ['session', 'presentation'] as const;

/** Worker → host. */
export type FromWorker =
  | { readonly t: 'ready' }
  | { readonly t: 'fatal'; readonly error: SerializedIcError }
  | { readonly t: 'done'; readonly id: number; readonly value: unknown }
  | { readonly t: 'fail'; readonly id: number; readonly error: SerializedIcError }
  | { readonly t: 'pong'; readonly id: number }
  | {
      readonly t: 'log';
      readonly level: LogLevel;
      readonly bindings: Record<string, unknown>;
      readonly obj: Record<string, unknown>;
      readonly msg?: string;
    };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Host → worker on a stream port. */
export type StreamDown =
  { readonly chunk: Uint8Array } | { readonly end: true } | { readonly error: SerializedIcError };

/** Worker → host on a stream port: bytes consumed (more may be sent), or the reader gave up. */
export type StreamUp = { readonly credit: number } | { readonly cancel: true };

/** Operations whose items carry a stream. */
export const STREAM_OPERATIONS: ReadonlySet<Operation> = new Set<Operation>([
  'session-recording',
  'command-shell-recording',
  'show-my-screen-recording',
  'presentation-recording',
  'site-backup',
]);

/**
 * Messages to the other thread go out in batches: everything sent during one turn of the event loop is one
 * postMessage (one structured-clone pass, one wake-up of the other thread) at the next `setImmediate`.
 */
export class Outbox<M> {
  #queue: M[] = [];
  #transfer: TransferListItem[] = [];
  #scheduled = false;

  constructor(private readonly post: (batch: M[], transfer: TransferListItem[]) => void) {}

  send(message: M, transfer?: readonly TransferListItem[]): void {
    this.#queue.push(message);
    if (transfer) this.#transfer.push(...transfer);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#scheduled = false;
    if (!this.#queue.length) return;
    const batch = this.#queue;
    const transfer = this.#transfer;
    this.#queue = [];
    this.#transfer = [];
    this.post(batch, transfer);
  }
}
