import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { LengthCheck, looksLikeXml, peek } from './binary-body.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return chunks;
}

describe('LengthCheck', () => {
  it('hands on the same bytes in order, joined into chunks of at most 256 KiB', async () => {
    const source = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < source.length; i++) source[i] = (i * 7919) >>> 3;
    const records = [];
    for (let o = 0; o < source.length; o += 16 * 1024) records.push(source.subarray(o, o + 16 * 1024));
    const check = new LengthCheck(source.length, 'test');
    const chunks = await collect(Readable.from(records).pipe(check));
    expect(sha(Buffer.concat(chunks))).toBe(sha(source));
    expect(check.bytes).toBe(source.length);
    expect(chunks.length).toBeLessThan(records.length / 8);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(256 * 1024 + 16 * 1024);
  });

  it('releases a partial chunk from a slow source without waiting for more bytes', async () => {
    const source = new PassThrough();
    const check = new LengthCheck(undefined, 'test');
    source.pipe(check);
    const first = new Promise<Buffer>((resolve) => check.once('data', resolve));
    source.write(Buffer.from('abc'));
    const t0 = Date.now();
    expect((await first).toString()).toBe('abc');
    expect(Date.now() - t0).toBeLessThan(1000);
    source.end(Buffer.from('def'));
    expect(Buffer.concat(await collect(check)).toString()).toBe('def');
  });

  it('fails with IC_ERR_SITE_BODY_MISMATCH when fewer or more bytes than announced arrive', async () => {
    for (const announced of [10, 2]) {
      await expect(
        pipeline(
          Readable.from([Buffer.from('abcde')]),
          new LengthCheck(announced, 'a recording'),
          new PassThrough().resume(),
        ),
      ).rejects.toMatchObject({
        code: 'IC_ERR_SITE_BODY_MISMATCH',
        message: `a recording: received 5 of ${announced} announced bytes`,
      });
    }
  });

  it('stops its hold timer when destroyed (nothing left to keep the process awake)', () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const check = new LengthCheck(undefined, 'test');
    check.write(Buffer.from('x'));
    expect(timers()).toBe(before + 1);
    check.destroy();
    expect(timers()).toBe(before);
  });
});

describe('peek / looksLikeXml', () => {
  it('sees an XML error document behind a BOM and whitespace, and keeps the bytes of a binary body', async () => {
    expect(looksLikeXml(Buffer.from('\uFEFF \n<?xml version="1.0"?><error>x</error>'))).toBe(true);
    expect(looksLikeXml(Buffer.from('<ns:error xmlns:ns="x">no</ns:error>'))).toBe(true);
    expect(looksLikeXml(Buffer.from([0x1f, 0x8b, 0x08, 0, 0]))).toBe(false);
    const body = new PassThrough();
    body.write(Buffer.alloc(100, 1));
    setTimeout(() => body.end(Buffer.alloc(300, 2)), 10);
    const { head, body: rest } = await peek(body);
    expect(head.length).toBeGreaterThanOrEqual(256);
    expect(Buffer.concat(await collect(rest)).length).toBe(400);
  });
});
