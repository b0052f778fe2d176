import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogFn, PluginContext, PluginLogger } from '../context.js';

/** One captured log call. */
export interface CapturedLog {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly bindings: Record<string, unknown>;
  readonly obj: object;
  readonly msg: string | undefined;
}

/** A context for tests, with the log calls it captured and a way to abort it. */
export interface FakeContext<C> extends PluginContext<C> {
  readonly logs: CapturedLog[];
  abort(): void;
}

function capturingLogger(logs: CapturedLog[], bindings: Record<string, unknown>): PluginLogger {
  const at =
    (level: CapturedLog['level']): LogFn =>
    (objOrMsg: object | string, msg?: string) => {
      if (typeof objOrMsg === 'string') logs.push({ level, bindings, obj: {}, msg: objOrMsg });
      else logs.push({ level, bindings, obj: objOrMsg, msg });
    };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (more) => capturingLogger(logs, { ...bindings, ...more }),
  };
}

/** Options for {@link createFakeContext}. */
export interface FakeContextOptions<C> {
  readonly config: C;
  readonly destinationName?: string;
  /** Defaults to a new temporary directory. */
  readonly dataDir?: string;
  readonly hostVersion?: string;
}

/** A PluginContext for unit tests: frozen config, a capturing logger, a temporary data directory. */
export function createFakeContext<C>(options: FakeContextOptions<C>): FakeContext<C> {
  const controller = new AbortController();
  const logs: CapturedLog[] = [];
  return {
    config: Object.freeze(structuredClone(options.config)),
    destinationName: options.destinationName ?? 'test-destination',
    logger: capturingLogger(logs, {}),
    signal: controller.signal,
    dataDir: options.dataDir ?? mkdtempSync(join(tmpdir(), 'ic-plugin-data-')),
    hostVersion: options.hostVersion ?? '0.1.0',
    logs,
    abort: () => controller.abort(),
  };
}
