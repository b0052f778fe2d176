import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './create-logger.js';

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('redacts secrets at any depth and never writes their values', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream, secretKeys: ['apiKey'] });
    log.info(
      {
        site: { name: 'main', clientSecret: 'S3CRET-1' },
        destination: { config: { connectionString: 'postgres://u:PW-2@h/db', apiKey: 'K-3' } },
        password: 'PW-4',
      },
      'site saved',
    );
    const [line] = out.lines();
    const text = JSON.stringify(line);
    for (const secret of ['S3CRET-1', 'PW-2', 'K-3', 'PW-4']) expect(text).not.toContain(secret);
    expect(line).toMatchObject({
      msg: 'site saved',
      site: { name: 'main', clientSecret: '[redacted]' },
      password: '[redacted]',
    });
  });

  it('puts errors under err with their code', () => {
    const out = capture();
    createLogger({ destination: out.stream }).error(
      { err: Object.assign(new Error('boom'), { code: 'IC_ERR_INTERNAL' }) },
      'failed',
    );
    expect(out.lines()[0]).toMatchObject({ err: { message: 'boom', code: 'IC_ERR_INTERNAL' }, msg: 'failed' });
  });

  it('adds the messages of causes to an error message once: not again when it already says them', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    const enoent = new Error('ENOENT: no such file');
    log.error({ err: new Error(`cannot read x: ${enoent.message}`, { cause: enoent }) }, 'a');
    log.error({ err: new Error('the run failed', { cause: new Error('socket hang up', { cause: enoent }) }) }, 'b');
    expect(out.lines().map((l) => (l.err as { message: string }).message)).toEqual([
      'cannot read x: ENOENT: no such file',
      'the run failed: socket hang up: ENOENT: no such file',
    ]);
  });
});
