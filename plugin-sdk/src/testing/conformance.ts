import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkAck } from '../ack.js';
import { checkCheckResult } from '../check-result.js';
import type { Destination } from '../define-destination.js';
import { isIcError, PluginError, type ErrorCode } from '../errors/index.js';
import type { Item } from '../items.js';
import { isStreamOperation, type Operation } from '../operations.js';
import { loadPluginPackage, type LoadedPluginPackage } from '../plugin-package.js';
import { createFakeContext } from './fake-context.js';
import { sampleItem, type SampleItemOptions } from './sample-items.js';

/** One conformance check's outcome. */
export interface ConformanceCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly code?: ErrorCode;
  readonly message: string;
}

/** Everything the suite found. `codes` lists the code of every failed check, in order. */
export interface ConformanceReport {
  readonly ok: boolean;
  readonly pluginId?: string;
  readonly checks: readonly ConformanceCheck[];
  readonly codes: readonly ErrorCode[];
}

/** What to run the suite on. */
export interface ConformanceOptions {
  /** The plugin package's root (where its package.json is). */
  readonly packageDir: string;
  /** A valid destination config for the plugin. */
  readonly config: Record<string, unknown>;
  readonly hostVersion?: string;
  /** Byte size of the sample recordings and backups. */
  readonly streamBytes?: number;
  /** Per-call timeout. */
  readonly timeoutMs?: number;
}

class Run {
  readonly checks: ConformanceCheck[] = [];

  async step<T>(name: string, fn: () => Promise<T>, fallback: ErrorCode): Promise<T | undefined> {
    try {
      const value = await fn();
      this.checks.push({ name, ok: true, message: 'ok' });
      return value;
    } catch (err) {
      const code = isIcError(err) ? err.code : fallback;
      this.checks.push({ name, ok: false, code, message: err instanceof Error ? err.message : String(err) });
      return undefined;
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PluginError('IC_ERR_PLUGIN_ERROR_UNCODED', `${what} did not settle within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function deliver(dest: Destination, item: Item, timeoutMs: number): Promise<unknown> {
  const handler = dest.handlers[item.operation] as
    ((i: Item, o: { signal: AbortSignal }) => Promise<unknown>) | undefined;
  if (!handler) throw new PluginError('IC_ERR_PLUGIN_OPERATION_MISSING', `no handler for ${item.operation}`);
  return withTimeout(handler(item, { signal: AbortSignal.timeout(timeoutMs) }), timeoutMs, `handler ${item.operation}`);
}

async function checkDelivery(
  dest: Destination,
  op: Operation,
  opts: SampleItemOptions,
  timeoutMs: number,
): Promise<void> {
  const sample = sampleItem(op, opts);
  const ack = checkAck(await deliver(dest, sample.item, timeoutMs), `handler ${op}`);
  if (sample.stream && !sample.stream.readableEnded) {
    throw new PluginError(
      'IC_ERR_PLUGIN_STREAM_NOT_CONSUMED',
      `handler ${op} acknowledged after reading ${sample.stream.bytesRead} of ${opts.streamBytes} bytes`,
    );
  }
  if (sample.stream && ack.status !== 'skipped' && ack.bytes !== undefined && ack.bytes !== opts.streamBytes) {
    throw new PluginError(
      'IC_ERR_PLUGIN_ACK_INVALID',
      `handler ${op} acknowledged ${ack.bytes} bytes of a ${opts.streamBytes}-byte stream`,
    );
  }
}

async function checkFailingStream(
  dest: Destination,
  op: Operation,
  opts: SampleItemOptions,
  timeoutMs: number,
): Promise<void> {
  const sample = sampleItem(op, { ...opts, failAfter: Math.floor((opts.streamBytes ?? 2) / 2), lsid: 'f'.repeat(32) });
  let result: unknown;
  try {
    result = await deliver(dest, sample.item, timeoutMs);
  } catch (err) {
    if (isIcError(err)) return;
    throw new PluginError(
      'IC_ERR_PLUGIN_ERROR_UNCODED',
      `handler ${op} rejected a failing stream with an uncoded error: ${String(err)}`,
    );
  }
  throw new PluginError(
    'IC_ERR_PLUGIN_ACK_INVALID',
    `handler ${op} acknowledged ${JSON.stringify(result)} although its stream failed`,
  );
}

/**
 * The conformance suite any plugin package can run in its own tests: the package loads (manifest, host range,
 * api version, config schema, entry), the sample config validates, every declared operation has a handler and
 * none is undeclared, check() and every ack are well-formed, streams are read to the end, a failing stream is
 * answered with a coded error and no ack, and close() resolves. Never throws; read the report.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const run = new Run();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const item: SampleItemOptions = { streamBytes: options.streamBytes ?? 256 * 1024 };
  const report = (pluginId?: string): ConformanceReport => {
    const failed = run.checks.filter((c) => !c.ok);
    return { ok: failed.length === 0, pluginId, checks: run.checks, codes: failed.map((c) => c.code!) };
  };

  const pkg: LoadedPluginPackage | undefined = await run.step(
    'package loads (manifest, api version, host range, config schema, entry)',
    () => loadPluginPackage(options.packageDir, options.hostVersion ?? '0.1.0'),
    'IC_ERR_PLUGIN_LOAD_FAILED',
  );
  if (!pkg) return report();
  const id = pkg.manifest.id;
  const config = await run.step(
    'sample config is valid',
    () => Promise.resolve(pkg.configSchema.validate(options.config, `config of ${id}`)),
    'IC_ERR_CONFIG_INVALID',
  );
  if (!config) return report(id);
  const ctx = createFakeContext({ config, dataDir: await mkdtemp(join(tmpdir(), `ic-conformance-${id}-`)) });
  const dest = await run.step(
    'create() returns a destination',
    async () => {
      const d = await withTimeout(Promise.resolve(pkg.plugin.create(ctx)), timeoutMs, 'create()');
      if (typeof d?.check !== 'function' || typeof d.close !== 'function' || typeof d.handlers !== 'object') {
        throw new PluginError('IC_ERR_PLUGIN_CREATE_FAILED', 'create() must return { check, handlers, close }');
      }
      return d;
    },
    'IC_ERR_PLUGIN_CREATE_FAILED',
  );
  if (!dest) return report(id);

  const declared = pkg.manifest.operations;
  for (const op of declared) {
    await run.step(
      `declared operation ${op} has a handler`,
      () => {
        if (typeof dest.handlers[op] !== 'function')
          throw new PluginError(
            'IC_ERR_PLUGIN_OPERATION_MISSING',
            `manifest declares "${op}" but handlers["${op}"] is not a function`,
          );
        return Promise.resolve();
      },
      'IC_ERR_PLUGIN_OPERATION_MISSING',
    );
  }
  for (const op of Object.keys(dest.handlers).filter((k) => !(declared as string[]).includes(k))) {
    run.checks.push({
      name: `handler ${op} is declared`,
      ok: false,
      code: 'IC_ERR_PLUGIN_OPERATION_UNDECLARED',
      message: `handlers["${op}"] exists but the manifest does not declare "${op}"`,
    });
  }
  await run.step(
    'check() resolves to a CheckResult',
    async () => checkCheckResult(await withTimeout(dest.check(), timeoutMs, 'check()'), 'check()'),
    'IC_ERR_PLUGIN_CHECK_INVALID',
  );

  for (const op of declared.filter((o) => typeof dest.handlers[o] === 'function')) {
    await run.step(
      `${op}: delivers a sample and acknowledges it`,
      () => checkDelivery(dest, op, item, timeoutMs),
      'IC_ERR_PLUGIN_ERROR_UNCODED',
    );
    if (isStreamOperation(op)) {
      await run.step(
        `${op}: a failing stream is rejected with a coded error`,
        () => checkFailingStream(dest, op, item, timeoutMs),
        'IC_ERR_PLUGIN_ERROR_UNCODED',
      );
    }
  }
  await run.step(
    'close() resolves',
    () => withTimeout(dest.close(), timeoutMs, 'close()'),
    'IC_ERR_PLUGIN_ERROR_UNCODED',
  );
  return report(id);
}
