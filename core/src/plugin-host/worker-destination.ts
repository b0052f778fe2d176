/**
 * A destination instance that runs in its own worker thread (ADR 009). To the engine it is an ordinary
 * Destination: `check`, one handler per declared operation, `close`. Underneath:
 * - each call has a timeout (for streams: time without progress); past it the call fails IC_ERR_PLUGIN_TIMEOUT
 *   and the worker is pinged — one that does not answer is terminated;
 * - a worker that throws uncaught, exits or runs out of heap (`memoryLimitMb`) fails every call in flight with
 *   IC_ERR_PLUGIN_CRASHED (retryable; `details.inFlight`: how many calls it took down) and is restarted for the next
 *   call after a backoff that doubles with each consecutive crash (a timeout carries `details.inFlight` too);
 * - recordings and backups cross as streams (stream-bridge.ts), never as buffers.
 */
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type TransferListItem } from 'node:worker_threads';
import {
  checkAck,
  checkCheckResult,
  deserializeIcError,
  MODEL_JSON,
  PluginError,
  type Ack,
  type CallOptions,
  type CheckResult,
  type Destination,
  type Handlers,
  type Item,
  type Operation,
} from '@integration-client/plugin-sdk';
import type { Logger } from 'pino';
import {
  MODEL_KEYS,
  Outbox,
  STREAM_OPERATIONS,
  type FromWorker,
  type ModelText,
  type ToWorker,
  type WorkerInit,
} from './protocol.js';
import { sendStream } from './stream-bridge.js';

export interface IsolationOptions {
  /** Per-call timeout; for streams the longest time without a byte moving. */
  readonly callTimeoutMs: number;
  /** Heap limit of the worker (V8 old generation). */
  readonly memoryLimitMb: number;
  /** First restart delay after a crash; doubles per consecutive crash up to `maxBackoffMs`. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Time the plugin gets to load and create its instance (default 60 s, at least the call timeout). */
  readonly loadTimeoutMs?: number;
  /** Time a timed-out worker gets to answer a ping before it is terminated. */
  readonly pingGraceMs?: number;
  /**
   * How much lower the worker thread's CPU priority is than the thread that starts it (Linux nice increment, 0–19;
   * default 0). The host sets `pluginNice` (default 10). Elsewhere than Linux it is not applied.
   */
  readonly nice?: number;
}

/**
 * A request waiting for its answer. Plain fields, no closures or timer of its own: with 1,000 sessions in flight,
 * what each one keeps alive until its destination answers is copied by every young-generation collection.
 */
interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly worker: Worker;
  /** Date.now() by which the call must answer (for a stream: move its next byte); see #expire. */
  deadline: number;
  /** For a handler call: where a malformed Ack is reported from (the answer is checked as an Ack). */
  readonly ack?: string;
  readonly signal?: AbortSignal;
  readonly channel?: MessageChannel;
  readonly stream?: Readable;
}

/** The compiled worker entry; under vitest (sources) the built file in dist. */
function workerUrl(): URL {
  const here = new URL('./plugin-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return new URL(here.href.replace('/core/src/', '/core/dist/'));
}

export class WorkerDestination implements Destination {
  readonly handlers: Handlers;
  #worker: Worker | undefined;
  #starting: Promise<Worker> | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #crashes = 0;
  #restarts = 0;
  #restartAt = 0;
  #closed = false;
  #closing = false;
  #probing: Promise<void> | undefined;
  readonly #outboxes = new WeakMap<Worker, Outbox<ToWorker>>();
  readonly #where: string;

  private constructor(
    private readonly init: WorkerInit,
    private readonly log: Logger,
    private readonly o: IsolationOptions,
  ) {
    this.#where = `destination ${JSON.stringify(init.destinationName)} (plugin ${init.pluginId})`;
    const handlers: Record<string, (item: Item, options: CallOptions) => Promise<Ack>> = {};
    for (const op of init.operations) handlers[op] = (item, options) => this.#deliver(op, item, options);
    this.handlers = handlers;
    this.ready = this.#ensureWorker().then(() => undefined);
    this.ready.catch(() => undefined); // a failed start is reported to whoever awaits `ready` or calls, not as unhandled
  }

  /**
   * Resolves once the plugin's instance exists in the worker; rejects with the load/create failure's code. Calls
   * made before then wait for it (and fail with that code).
   */
  readonly ready: Promise<void>;

  /** Times the worker crashed or hung and was replaced (or will be, at the next call), since this instance opened. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Starts the worker and returns at once, while the worker boots, imports the plugin and creates the instance
   * (130–180 ms for a small plugin): the engine requests the report meanwhile and awaits `ready` before it delivers.
   */
  static launch(init: WorkerInit, log: Logger, options: IsolationOptions): WorkerDestination {
    return new WorkerDestination(init, log, options);
  }

  /** Starts the worker and waits until the plugin's instance exists; load/create failures reject with their code. */
  static async start(init: WorkerInit, log: Logger, options: IsolationOptions): Promise<WorkerDestination> {
    const d = WorkerDestination.launch(init, log, options);
    await d.ready;
    return d;
  }

  async check(): Promise<CheckResult> {
    return checkCheckResult(await this.#request({ t: 'check', id: 0 }), `${this.#where}: check()`);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true; // from here on no worker is (re)started
    if (this.#worker && !this.#probing) {
      await Promise.race([
        this.#request({ t: 'close', id: 0 }).catch((err: unknown) =>
          this.log.warn({ err }, 'the plugin failed to close cleanly'),
        ),
        new Promise((r) => setTimeout(r, Math.min(10_000, this.o.callTimeoutMs)).unref()),
      ]);
    }
    this.#closed = true;
    await this.#stop();
  }

  /** Not async, like #request: the item is not held once it is queued to the worker (it is copied there). */
  #deliver(op: Operation, item: Item, options: CallOptions): Promise<Ack> {
    const { stream, ...rest } = item as Item & { stream?: Readable };
    return this.#request(
      { t: 'call', id: 0, ...asModelText(rest) },
      STREAM_OPERATIONS.has(op) ? stream : undefined,
      options.signal,
      (this.#ackWhere[op] ??= `${this.#where}: ${op} handler`),
    ) as Promise<Ack>;
  }

  readonly #ackWhere: Partial<Record<Operation, string>> = {};

  /**
   * Sends one request and waits for its answer, under the call timeout; with `ack`, the answer is checked as an
   * Ack. The message is queued and let go: the pending call (#start) never sees it, so a 10 KB session is not kept
   * alive in this thread until its plugin has written it.
   */
  #request(message: ToWorker, stream?: Readable, signal?: AbortSignal, ack?: string): Promise<unknown> {
    if (this.#closed)
      return Promise.reject(new PluginError('IC_ERR_PLUGIN_CRASHED', `${this.#where} is closed`, { retryable: true }));
    // The usual case — the worker runs and answers — goes straight on; no promise hop holds the message.
    if (this.#worker && !this.#probing) return this.#start(this.#worker, message, stream, signal, ack);
    // A worker being probed after a timeout takes no new call until it answered (or was replaced).
    const ready = this.#probing ? this.#probing.then(() => this.#ensureWorker()) : this.#ensureWorker();
    return ready.then((worker) => this.#start(worker, message, stream, signal, ack));
  }

  /** Registers request `id` (deadline, abort), queues the message, and pumps the stream. */
  #start(worker: Worker, message: ToWorker, stream?: Readable, signal?: AbortSignal, ack?: string): Promise<unknown> {
    const id = this.#nextId++;
    const channel = stream ? new MessageChannel() : undefined;
    const answer = new Promise<unknown>((resolve, reject) => {
      const deadline = Date.now() + this.o.callTimeoutMs;
      this.#pending.set(id, { resolve, reject, worker, deadline, ack, signal, channel, stream });
    });
    if (signal) this.#watch(signal, id, worker);
    this.#sweep ??= setInterval(() => this.#expire(), this.#sweepMs);
    if (stream && channel) {
      void sendStream(channel.port1, stream, () => this.#progress(id));
      this.#send(worker, { ...message, id, stream: channel.port2 } as ToWorker, [channel.port2]);
    } else this.#send(worker, { ...message, id });
    return answer;
  }

  /**
   * Call timeouts: one timer per destination while calls are pending (not one per call), checking deadlines every
   * quarter of the timeout (at most 1 s), so a call fails between callTimeoutMs and callTimeoutMs + that period.
   * A timed-out call is aborted in the worker, and the worker is pinged — one that does not answer is terminated.
   */
  #expire(): void {
    const now = Date.now();
    // The calls in the plugin when these timed out (as for a crash: with one, that call's item made it hang; with
    // more, which one did cannot be told — a plugin spinning on one item holds every other call behind it). While a
    // ping asks whether it hangs, the call that timed out before is counted too.
    const details = { inFlight: this.#pending.size + (this.#probing ? 1 : 0) };
    for (const [id, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#settle(id)?.reject(
        new PluginError(
          'IC_ERR_PLUGIN_TIMEOUT',
          `${this.#where}: the call ran ${this.o.callTimeoutMs} ms without progress; raise pluginCallTimeoutSeconds if the destination is just slow`,
          { details },
        ),
      );
      this.#send(p.worker, { t: 'abort', id });
      this.#probe(p.worker);
    }
  }

  #sweep: NodeJS.Timeout | undefined;

  get #sweepMs(): number {
    return Math.max(10, Math.min(1000, Math.floor(this.o.callTimeoutMs / 4)));
  }

  /** A stream call moved bytes: its deadline starts again. */
  #progress(id: number): void {
    const p = this.#pending.get(id);
    if (p) p.deadline = Date.now() + this.o.callTimeoutMs;
  }

  /**
   * Calls that a signal can stop, with one 'abort' listener per signal rather than one per call (adding and
   * removing a listener on Node's EventTarget costs ~10 µs, against ~300 µs for all of a session here). The
   * listener goes when the signal's last call has settled (#unwatch).
   */
  #watch(signal: AbortSignal, id: number, worker: Worker): void {
    let w = this.#watched.get(signal);
    if (!w) {
      const calls = new Map<number, Worker>();
      const listener = () => {
        for (const [callId, to] of calls) this.#send(to, { t: 'abort', id: callId });
        calls.clear();
        this.#watched.delete(signal);
      };
      w = { calls, listener };
      this.#watched.set(signal, w);
      signal.addEventListener('abort', listener, { once: true });
    }
    w.calls.set(id, worker);
  }

  #unwatch(signal: AbortSignal, id: number): void {
    const w = this.#watched.get(signal);
    if (!w || !w.calls.delete(id) || w.calls.size) return;
    signal.removeEventListener('abort', w.listener);
    this.#watched.delete(signal);
  }

  readonly #watched = new Map<AbortSignal, { calls: Map<number, Worker>; listener: () => void }>();

  /** Forgets request `id`: its abort watch, its stream's port (an unread stream is destroyed), the sweep if idle. */
  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined;
    this.#pending.delete(id);
    if (p.signal) this.#unwatch(p.signal, id);
    p.channel?.port1.close();
    if (p.stream && !p.stream.readableEnded && !p.stream.destroyed) p.stream.destroy();
    if (!this.#pending.size && this.#sweep) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
    return p;
  }

  /** After a timeout: a worker that does not answer a ping in time is hung and is terminated. */
  #probe(worker: Worker): void {
    if (this.#probing) return;
    const id = this.#nextId++;
    this.#probing = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(grace);
        worker.off('message', onPong);
        this.#probing = undefined;
        resolve();
      };
      const grace = setTimeout(() => {
        // The call that timed out (failed already) was in it too: the calls failed here are not alone.
        if (this.#worker === worker) this.#crashed(worker, 'stopped answering (hung past the call timeout)', 1);
        done();
      }, this.o.pingGraceMs ?? 5000);
      const onPong = (batch: FromWorker[]) => {
        if (batch.some((m) => m.t === 'pong' && m.id === id)) done();
      };
      worker.on('message', onPong);
      this.#send(worker, { t: 'ping', id });
    });
  }

  /** The running worker, or a new one once the backoff after a crash has passed. */
  #ensureWorker(): Promise<Worker> {
    if (this.#worker) return Promise.resolve(this.#worker);
    if (this.#closing)
      return Promise.reject(new PluginError('IC_ERR_PLUGIN_CRASHED', `${this.#where} is closing`, { retryable: true }));
    this.#starting ??= this.#spawn().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  async #spawn(): Promise<Worker> {
    const wait = this.#restartAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.#closing) throw new PluginError('IC_ERR_PLUGIN_CRASHED', `${this.#where} is closing`, { retryable: true });
    const worker = new Worker(workerUrl(), {
      workerData: { ...this.init, nice: this.o.nice },
      resourceLimits: { maxOldGenerationSizeMb: this.o.memoryLimitMb },
      stdout: true,
      stderr: true,
    });
    this.#pipeOutput(worker);
    await waitReady(
      worker,
      this.o.loadTimeoutMs ?? Math.max(60_000, this.o.callTimeoutMs),
      this.#where,
      this.o.memoryLimitMb,
    );
    worker.on('message', (batch: FromWorker[]) => {
      for (const m of batch) this.#onMessage(m);
    });
    // A worker's uncaught error can be reported before the answers it posted just before are handled; Node hands
    // every posted message over before 'exit', so calls in flight are failed there: a call that was answered
    // (its item written) is never reported failed and delivered again.
    let failure: string | undefined;
    worker.on('error', (err) => (failure ??= crashError(err, this.#where, this.o.memoryLimitMb).message));
    worker.on('exit', (code) => {
      if (this.#worker === worker && !this.#closed) this.#crashed(worker, failure ?? `exited with code ${code}`);
    });
    this.#worker = worker;
    return worker;
  }

  #onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'done': {
        const p = this.#settle(m.id);
        if (!p) return;
        this.#crashes = 0;
        if (p.ack === undefined) p.resolve(m.value);
        else
          try {
            p.resolve(checkAck(m.value, p.ack));
          } catch (err) {
            p.reject(err as Error);
          }
        return;
      }
      case 'fail':
        this.#settle(m.id)?.reject(deserializeIcError(m.error));
        return;
      case 'log':
        this.log[m.level]({ ...m.bindings, ...m.obj }, m.msg ?? '');
        return;
      default:
        return;
    }
  }

  /** Queues a message to `worker` (batched per event-loop turn); messages to a replaced worker are dropped. */
  #send(worker: Worker, message: ToWorker, transfer?: readonly TransferListItem[]): void {
    let outbox = this.#outboxes.get(worker);
    if (!outbox) {
      outbox = new Outbox<ToWorker>((batch, t) => worker.postMessage(batch, t));
      this.#outboxes.set(worker, outbox);
    }
    outbox.send(message, transfer);
  }

  /**
   * Fails what is in flight, logs (and so notifies), and arms the restart backoff. `failedBefore`: calls it had when
   * it broke that have failed already (the timed-out call of a hang).
   */
  #crashed(worker: Worker, reason: string, failedBefore = 0): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    this.#crashes++;
    this.#restarts++;
    const delay = Math.min((this.o.backoffMs ?? 1000) * 2 ** (this.#crashes - 1), this.o.maxBackoffMs ?? 60_000);
    this.#restartAt = Date.now() + delay;
    const message = reason.startsWith(this.#where) ? reason : `${this.#where}: ${reason}`;
    const inFlight = [...this.#pending.keys()];
    // How many calls it took down: with one, that call's item crashed it (the engine counts it against that item);
    // with more, which one did cannot be told (the engine delivers them again one at a time).
    const details = { inFlight: inFlight.length + failedBefore };
    for (const id of inFlight)
      this.#settle(id)?.reject(new PluginError('IC_ERR_PLUGIN_CRASHED', message, { retryable: true, details }));
    this.log.error(
      { code: 'IC_ERR_PLUGIN_CRASHED', plugin: this.init.pluginId, inFlight: inFlight.length, restartInMs: delay },
      `${message}; restarting it in ${delay} ms`,
    );
    void worker.terminate();
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const worker = this.#worker;
    this.#worker = undefined;
    for (const id of [...this.#pending.keys()])
      this.#settle(id)?.reject(
        new PluginError('IC_ERR_PLUGIN_CRASHED', `${this.#where} was closed`, { retryable: true }),
      );
    if (worker) await worker.terminate();
  }

  /** A plugin's console output goes to the log, never to the host's stdout (which may carry --json). */
  #pipeOutput(worker: Worker): void {
    for (const [stream, level] of [
      [worker.stdout, 'info'],
      [worker.stderr, 'warn'],
    ] as const) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (rest + text).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) if (line) this.log[level]({ console: level === 'info' ? 'stdout' : 'stderr' }, line);
      });
    }
  }
}

function crashError(err: Error, where: string, memoryLimitMb: number): PluginError {
  const oom = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
  return new PluginError(
    'IC_ERR_PLUGIN_CRASHED',
    oom
      ? `${where}: ran out of memory (pluginMemoryLimitMb ${memoryLimitMb})`
      : `${where}: uncaught error: ${err.message}`,
  );
}

/** Waits for a new worker's `ready`; its `fatal` rejects with the plugin's code, a crash or a hang with theirs. */
function waitReady(worker: Worker, timeoutMs: number, where: string, memoryLimitMb: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (!err) return resolve();
      void worker.terminate();
      reject(err);
    };
    const timer = setTimeout(
      () => settle(new PluginError('IC_ERR_PLUGIN_TIMEOUT', `${where}: loading the plugin took over ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (batch: FromWorker[]) => {
      for (const m of batch)
        if (m.t === 'ready') settle();
        else if (m.t === 'fatal') settle(deserializeIcError(m.error));
    };
    const onError = (err: Error) => settle(crashError(err, where, memoryLimitMb));
    const onExit = (code: number) =>
      settle(new PluginError('IC_ERR_PLUGIN_CRASHED', `${where}: the worker exited with code ${code} while loading`));
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

/**
 * Imports a plugin package's entry in a throw-away worker and checks what it exports (LOAD_FAILED,
 * NOT_A_DESTINATION, ID_MISMATCH), without creating an instance. Used after an install, before it is kept.
 */
export async function probePluginCode(packageDir: string, hostVersion: string, timeoutMs = 30_000): Promise<void> {
  const init: WorkerInit = {
    packageDir,
    pluginId: '',
    operations: [],
    config: {},
    destinationName: '',
    dataDir: '',
    hostVersion,
    logLevel: 'fatal',
    probe: true,
  };
  const worker = new Worker(workerUrl(), { workerData: init, stdout: true, stderr: true });
  worker.stdout.resume();
  worker.stderr.resume();
  try {
    await waitReady(worker, timeoutMs, `plugin package in ${packageDir}`, 0);
  } finally {
    await worker.terminate();
  }
}

/** The item without its model, and the model as JSON text (see ModelText); items without one as they are. */
function asModelText(item: Record<string | symbol, unknown>): {
  item: Record<string, unknown>;
  model?: ModelText;
} {
  const key = MODEL_KEYS.find((k) => k in item);
  if (!key) return { item };
  // The engine may have made the text already, when the item was parsed (OpenDestination.modelAsText).
  const { [key]: model, [MODEL_JSON]: text, ...rest } = item;
  return { item: rest, model: { key, json: typeof text === 'string' ? text : JSON.stringify(model) } };
}
