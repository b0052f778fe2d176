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
  /** Called for every line at level error or above (e.g. to send a notification), with the logger's bindings. */
  readonly onError?: (bindings: Record<string, unknown>, obj: unknown, msg: string | undefined) => void;
}

/**
 * pino's error serializer, except that a cause's message is not appended again when the error's own message already
 * carries it (ours mostly do: `cannot read the CA file x: ENOENT: …` was logged with the ENOENT text twice).
 */
function serializeError(err: unknown): ReturnType<typeof pino.stdSerializers.err> {
  const out = pino.stdSerializers.err(err as Error);
  if (!(err instanceof Error)) return out;
  let message = err.message;
  for (let c: unknown = err.cause, i = 0; c instanceof Error && i < 6; c = c.cause, i++)
    if (!message.includes(c.message)) message += `: ${c.message}`;
  out.message = message;
  return out;
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
      serializers: { err: serializeError },
      ...(options.onError && {
        hooks: {
          logMethod(args, method, level) {
            if (level >= 50) {
              const [first, second] = args as unknown[];
              const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : undefined;
              try {
                options.onError!((this as Logger).bindings(), typeof first === 'string' ? {} : first, msg);
              } catch {
                // a failing notifier must never break logging
              }
            }
            method.apply(this, args);
          },
        },
      }),
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
