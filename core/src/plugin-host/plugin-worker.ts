/**
 * The entry module of a destination's worker thread. It loads the plugin package (the same no-code checks as
 * the host, then the import), creates the one instance, checks its handlers against the manifest, and serves
 * the host's calls. Nothing here can take the host down: an uncaught error or exit ends this thread only.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import {
  checkAck,
  checkCheckResult,
  importPluginEntry,
  loadPluginPackage,
  MODEL_JSON,
  PluginError,
  serializeIcError,
  type Destination,
  type Handler,
  type Operation,
  type PluginLogger,
} from '@integration-client/plugin-sdk';
import {
  LOG_LEVELS,
  MODEL_KEYS,
  Outbox,
  STREAM_OPERATIONS,
  type FromWorker,
  type LogLevel,
  type ModelText,
  type ToWorker,
  type WorkerInit,
} from './protocol.js';
import { receiveStream } from './stream-bridge.js';

const init = workerData as WorkerInit;
const port = parentPort as MessagePort;
/** Posts to the host in batches; a batch that cannot be cloned (a plugin put a function in error details or a
 * log object) is sent again as JSON, which drops what JSON cannot hold. */
const outbox = new Outbox<FromWorker>((batch) => {
  try {
    port.postMessage(batch);
  } catch {
    port.postMessage(JSON.parse(JSON.stringify(batch)) as FromWorker[]);
  }
});
const post = (m: FromWorker) => outbox.send(m);
// A plugin error nobody catches ends this worker; the answers of calls that finished before it still go out
// (they wait for the next turn in the outbox), so the host does not deliver those items again.
process.on('uncaughtExceptionMonitor', () => outbox.flush());
const shutdown = new AbortController();
const calls = new Map<number, AbortController>();
const where = `destination ${JSON.stringify(init.destinationName)} (plugin ${init.pluginId})`;

/** Makes a log object cloneable: errors become plain objects, anything else unclonable becomes text. */
function plain(obj: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(obj, (_k, v: unknown) =>
      v instanceof Error ? { type: v.name, message: v.message, stack: v.stack, ...(v as object) } : v,
    ),
  ) as Record<string, unknown>;
}

function workerLogger(bindings: Record<string, unknown>): PluginLogger {
  const min = LOG_LEVELS.indexOf(init.logLevel as LogLevel);
  const method =
    (level: LogLevel) =>
    (objOrMsg: object | string, msg?: string): void => {
      if (LOG_LEVELS.indexOf(level) < min) return;
      const obj = typeof objOrMsg === 'string' ? {} : plain(objOrMsg as Record<string, unknown>);
      const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
      post({ t: 'log', level, bindings, obj, ...(text !== undefined && { msg: text }) });
    };
  return {
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    fatal: method('fatal'),
    child: (more) => workerLogger({ ...bindings, ...more }),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

async function start(): Promise<Destination> {
  const pkg = init.package
    ? await importPluginEntry(init.package)
    : await loadPluginPackage(init.packageDir, init.hostVersion);
  let instance: Destination;
  try {
    instance = await pkg.plugin.create({
      config: deepFreeze(init.config),
      destinationName: init.destinationName,
      logger: workerLogger({}),
      signal: shutdown.signal,
      dataDir: init.dataDir,
      hostVersion: init.hostVersion,
    });
  } catch (err) {
    throw new PluginError('IC_ERR_PLUGIN_CREATE_FAILED', `${where}: create() failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof instance !== 'object' || typeof instance.check !== 'function' || typeof instance.close !== 'function')
    throw new PluginError(
      'IC_ERR_PLUGIN_CREATE_FAILED',
      `${where}: create() did not return { check, handlers, close }`,
    );
  const handlers = instance.handlers as Record<string, unknown>;
  for (const op of init.operations)
    if (typeof handlers[op] !== 'function')
      throw new PluginError(
        'IC_ERR_PLUGIN_OPERATION_MISSING',
        `${where}: the manifest declares ${op} but no handler exists`,
      );
  for (const op of Object.keys(handlers))
    if (!init.operations.includes(op as Operation))
      throw new PluginError('IC_ERR_PLUGIN_OPERATION_UNDECLARED', `${where}: handler ${op} is not in the manifest`);
  return instance;
}

/**
 * Serves one message. Not async, and a call's item is referenced by nothing that waits for its answer: the item
 * lives only as long as the plugin keeps it (a batching plugin holds what it still has to write, not the item).
 */
function serve(instance: Destination, m: ToWorker): void {
  switch (m.t) {
    case 'ping':
      post({ t: 'pong', id: m.id });
      return;
    case 'abort':
      calls.get(m.id)?.abort(new PluginError('IC_ERR_PLUGIN_TIMEOUT', `${where}: the host aborted the call`));
      return;
    case 'check':
      void answer(
        m.id,
        invoke(() => instance.check()).then((r) => checkCheckResult(r, `${where}: check()`)),
      );
      return;
    case 'close':
      shutdown.abort();
      void answer(
        m.id,
        invoke(() => instance.close()).then(() => null),
      );
      return;
    case 'call': {
      const { id } = m;
      const op = m.item.operation as Operation;
      const item: Record<string | symbol, unknown> = { ...m.item };
      if (m.model) withModel(item, m.model);
      if (STREAM_OPERATIONS.has(op) && m.stream) item.stream = receiveStream(m.stream);
      const controller = new AbortController();
      if (shutdown.signal.aborted) controller.abort(shutdown.signal.reason);
      calls.set(id, controller);
      const handler = instance.handlers[op] as Handler<Operation>;
      void answer(
        id,
        invoke(handler, item as never, { signal: controller.signal }).then((ack) =>
          checkAck(ack, `${where}: ${op} handler`),
        ),
      ).finally(() => calls.delete(id));
      return;
    }
  }
}

/**
 * Puts the model that crossed as JSON text on the item: parsed on first read of `item.session` /
 * `item.presentation` (from then on an ordinary property, as it was before; assigning one works too), and the text
 * itself under MODEL_JSON for `modelJson(item)` — a plugin that stores JSON takes the text and never has it parsed.
 */
function withModel(item: Record<string | symbol, unknown>, { key, json }: ModelText): void {
  Object.defineProperty(item, MODEL_JSON, { value: json });
  Object.defineProperty(item, key, LAZY_MODEL[key]);
}

/**
 * The lazy model's accessors: one pair per key, shared by every item. (A getter closure per item gave every item
 * hidden classes of its own, or sent it to dictionary mode, and V8 makes hidden classes in the old generation: in
 * the e2e benchmark the SQLite worker moved ~180 MB per 10,000 sessions there and ran 12 full collections; now
 * ~30 MB and 4.)
 */
const LAZY_MODEL = Object.fromEntries(
  MODEL_KEYS.map((key) => [
    key,
    {
      enumerable: true,
      configurable: true,
      get(this: Record<string | symbol, unknown>) {
        const value = JSON.parse(this[MODEL_JSON] as string) as unknown;
        settleModel(this, key, value);
        return value;
      },
      set(this: Record<string | symbol, unknown>, value: unknown) {
        settleModel(this, key, value);
      },
    },
  ]),
) as Record<ModelText['key'], PropertyDescriptor>;

function settleModel(item: Record<string | symbol, unknown>, key: string, value: unknown): void {
  Object.defineProperty(item, key, { value, enumerable: true, configurable: true, writable: true });
}

/** Closing the instance aborts every call still running. */
shutdown.signal.addEventListener('abort', () => {
  for (const c of calls.values()) c.abort(shutdown.signal.reason);
});

/** `fn(...args)` as a promise, a synchronous throw as a rejection (only this call's closure sees the args). */
function invoke<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): Promise<unknown> {
  return new Promise((resolve) => resolve(fn(...args)));
}

function answer(id: number, result: Promise<unknown>): Promise<void> {
  return result.then(
    (value) => post({ t: 'done', id, value }),
    (err: unknown) => post({ t: 'fail', id, error: serializeIcError(err, 'IC_ERR_PLUGIN_ERROR_UNCODED') }),
  );
}

/**
 * Lowers this thread's CPU priority `nice` steps below the thread that started it. On Linux the nice value belongs
 * to the thread (setpriority on a thread id), so the host's own thread keeps its priority: when both want a core,
 * the host's report reading and ledgers go first and the plugin takes idle CPU. (With an equal-priority jsonl
 * worker the host's thread waited ~150–250 ms longer for a core per 10,000 sessions; /proc schedstat.)
 */
function lowerPriority(nice: number | undefined): void {
  if (!nice || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(tid, Math.min(19, getPriority(tid) + nice));
  } catch (err) {
    workerLogger({}).warn({ err }, `${where}: could not lower the worker's CPU priority; it runs at the host's`);
  }
}

lowerPriority(init.nice);
if (init.probe)
  loadPluginPackage(init.packageDir, init.hostVersion).then(
    () => post({ t: 'ready' }),
    (err: unknown) => post({ t: 'fatal', error: serializeIcError(err, 'IC_ERR_PLUGIN_LOAD_FAILED') }),
  );
else
  start().then(
    (instance) => {
      port.on('message', (batch: ToWorker[]) => {
        for (const m of batch) serve(instance, m);
      });
      post({ t: 'ready' });
    },
    (err: unknown) => post({ t: 'fatal', error: serializeIcError(err, 'IC_ERR_PLUGIN_LOAD_FAILED') }),
  );
