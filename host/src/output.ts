import { isIcError } from '@integration-client/plugin-sdk/errors';

/** The CLI's output layer: the only place that writes to stdout/stderr directly. */
export const out = {
  line(text = ''): void {
    process.stdout.write(`${text}\n`);
  },
  json(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  },
  error(err: unknown): void {
    if (isIcError(err)) process.stderr.write(`error ${err.code}: ${err.message}\n`);
    else process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  },
};
