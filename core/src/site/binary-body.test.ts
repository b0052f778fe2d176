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
  it('hands on the same bytes in order and counts them', async () => {
    const source = Buffer.alloc(300_000);
    for (let i = 0; i < source.length; i++) source[i] = (i * 7919) >>> 3;
    const records = [];
    for (let o = 0; o < source.length; o += 16 * 1024) records.push(source.subarray(o, o + 16 * 1024));
    const check = new LengthCheck(source.length, 'test');
    expect(sha(Buffer.concat(await collect(Readable.from(records).pipe(check))))).toBe(sha(source));
    expect(check.bytes).toBe(source.length);
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
