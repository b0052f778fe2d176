import { describe, expect, it } from 'vitest';
import { createFakeContext } from './fake-context.js';
import { sampleSessionXml, sampleStream } from './samples.js';

describe('sampleStream', () => {
  it('yields exactly the requested bytes, deterministically', async () => {
    const a = Buffer.concat(await sampleStream(200_000, { chunkSize: 4096 }).toArray());
    const b = Buffer.concat(await sampleStream(200_000, { chunkSize: 4096 }).toArray());
    expect(a.length).toBe(200_000);
    expect(a.equals(b)).toBe(true);
  });

  it('fails with ECONNRESET after failAfter bytes', async () => {
    const s = sampleStream(1000, { failAfter: 300, chunkSize: 128 });
    await expect(s.toArray()).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(s.bytesRead).toBe(300);
  });
});

describe('fake context', () => {
  it('freezes the config, captures logs with child bindings and can be aborted', () => {
    const ctx = createFakeContext({ config: { a: 1 } });
    expect(Object.isFrozen(ctx.config)).toBe(true);
    ctx.logger.child({ op: 'x' }).warn({ n: 1 }, 'hello');
    expect(ctx.logs).toEqual([{ level: 'warn', bindings: { op: 'x' }, obj: { n: 1 }, msg: 'hello' }]);
    ctx.abort();
    expect(ctx.signal.aborted).toBe(true);
  });
});

describe('sampleSessionXml', () => {
  it('keeps the namespace on the session_list root', () => {
    expect(sampleSessionXml()).toMatch(
      /<session_list xmlns="http:\/\/www\.bomgar\.com\/namespaces\/API\/reporting"><session lsid="c69a8e10bea9428f816cfababe9815fe">/,
    );
  });
});
