import { isIcError } from '@integration-client/plugin-sdk/errors';

/** The CLI's output layer: the only place that writes to stdout/stderr directly. */
export const out = {
  line(text = ''): void {
    process.stdout.write(`${text}\n`);
  },
  json(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  },
  /** `error CODE: message` on stderr; with `json`, one line `{"error":{"code","message","retryable"}}` there instead. */
  error(err: unknown, json = false): void {
    const message = err instanceof Error ? err.message : String(err);
    if (json)
      process.stderr.write(
        `${JSON.stringify({ error: isIcError(err) ? { code: err.code, message, retryable: err.retryable } : { message } })}\n`,
      );
    else if (isIcError(err)) process.stderr.write(`error ${err.code}: ${message}\n`);
    else process.stderr.write(`error: ${message}\n`);
  },
};

/** An error as one line of text: `CODE: message` for a coded error, else its message. */
export function errorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return isIcError(err) ? `${err.code}: ${message}` : message;
}
