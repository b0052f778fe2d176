import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';
import { redactPaths, SECRET_KEYS } from './redaction.js';

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Name bound to every line (`client`, `service`, …). */
  readonly name?: string;
  /** More secret keys to redact, e.g. a plugin's `writeOnly` config fields. */
  readonly secretKeys?: readonly string[];
  /** Where lines go; stdout by default. */
  readonly destination?: DestinationStream;
}

/**
 * The logger factory: pino JSON lines, errors under `err`, and every known secret key replaced by `[redacted]`
 * at any depth up to four levels, so a config object can be logged without leaking its secrets.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const keys = [...SECRET_KEYS, ...(options.secretKeys ?? [])];
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name,
      redact: { paths: redactPaths(keys), censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
