/** Log method: object first, constant message (pino's calling convention). */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** The logger a plugin gets: a pino child logger, or anything with the same shape. */
export interface PluginLogger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): PluginLogger;
}

/**
 * Everything a destination instance gets from the host. Narrow on purpose: no container, no kernel objects,
 * so a plugin can run in a worker thread or child process.
 */
export interface PluginContext<Config = Record<string, unknown>> {
  /** The instance's config, validated against the plugin's schema (defaults applied) and frozen. */
  readonly config: Readonly<Config>;
  /** Name of the destination instance, for messages. */
  readonly destinationName: string;
  readonly logger: PluginLogger;
  /** Aborted when the host shuts the instance down. */
  readonly signal: AbortSignal;
  /** A directory the instance may keep state in (created by the host, private to the instance). */
  readonly dataDir: string;
  /** Version of the running host. */
  readonly hostVersion: string;
}

/** Per-call options passed to each handler. */
export interface CallOptions {
  /** Aborted when the call times out or the host shuts down; stop and reject. */
  readonly signal: AbortSignal;
}
