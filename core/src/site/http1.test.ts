import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BODY_CHUNK, http1Request, type Http1Options } from './http1.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A plain TCP server that answers each connection with `answer` (after reading the request head). */
async function server(answer: (socket: Socket, request: string) => void | Promise<void>): Promise<URL> {
  const s = createServer((socket) => {
    let request = '';
    const onData = (d: Buffer) => {
      request += d.toString('latin1');
      const end = request.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(request)?.[1] ?? 0);
      if (request.length < end + 4 + length) return;
      socket.off('data', onData);
      void answer(socket, request);
    };
    socket.on('data', onData).on('error', () => undefined);
  });
  servers.push(s);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return new URL(`http://127.0.0.1:${(s.address() as { port: number }).port}/api/reporting?x=1`);
}

/** Writes `data` in pieces of random sizes (1 byte up to 64 KiB), so every parser state meets a read boundary. */
async function writeSplit(socket: Socket, data: Buffer, seed = 7): Promise<void> {
  let r = seed;
  for (let o = 0; o < data.length;) {
    r = (r * 1103515245 + 12345) >>> 0;
    const n = 1 + (r % (r & 1 ? 17 : 65536));
    if (!socket.write(data.subarray(o, o + n))) await once(socket, 'drain');
    o += n;
    if (r % 5 === 0) await new Promise((res) => setImmediate(res));
  }
}

const request = (url: URL, o: Partial<Http1Options> = {}) =>
  http1Request({ url, method: 'POST', headers: {}, body: 'a=1', headersTimeoutMs: 5000, bodyTimeoutMs: 5000, ...o });

async function collect(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return chunks;
}

function bytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7919) >>> 3;
  return b;
}

describe('http1Request', () => {
  it('sends one POST with its form, host and connection: close', async () => {
    let seen = '';
    const url = await server((s, req) => {
      seen = req;
      s.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
    const res = await request(url, { headers: { authorization: 'Bearer t' }, body: 'generate_report=X&lsid=1' });
    expect(res.status).toBe(204);
    expect(await collect(res.body)).toEqual([]);
    expect(seen).toMatch(/^POST \/api\/reporting\?x=1 HTTP\/1\.1\r\n/);
    expect(seen).toContain(`host: ${url.host}\r\n`);
    expect(seen).toContain('authorization: Bearer t\r\n');
    expect(seen).toContain('content-length: 24\r\n');
    expect(seen).toContain('connection: close\r\n');
    expect(seen.endsWith('\r\n\r\ngenerate_report=X&lsid=1')).toBe(true);
  });

  it('reads a Content-Length body intact, in chunks of at most 1 MiB, whatever the read boundaries', async () => {
    const body = bytes(3 * BODY_CHUNK + 4567);
    const url = await server(async (s) => {
      await writeSplit(
        s,
        Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]),
      );
    });
    const res = await request(url);
    expect(res.headers.get('content-length')).toBe(String(body.length));
    const chunks: Buffer[] = []; // as pushed ('data' events; a for-await read() may join buffered chunks)
    res.body.on('data', (c: Buffer) => chunks.push(c));
    await once(res.body, 'end');
    expect(sha(Buffer.concat(chunks))).toBe(sha(body));
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(BODY_CHUNK);
    expect(chunks.length).toBeLessThan(12); // joined: the server wrote ~100 pieces
  });

  it('decodes a chunked body (extensions, trailer) split at every kind of boundary', async () => {
    const body = bytes(2 * BODY_CHUNK + 99);
    const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
    for (let o = 0, k = 1; o < body.length; k = (k * 3) % 70_001) {
      const piece = body.subarray(o, o + k);
      parts.push(Buffer.from(`${piece.length.toString(16)}${k % 2 ? ';ext=1' : ''}\r\n`), piece, Buffer.from('\r\n'));
      o += piece.length;
    }
    parts.push(Buffer.from('0\r\nX-Trailer: yes\r\n\r\n'));
    const url = await server(async (s) => {
      await writeSplit(s, Buffer.concat(parts), 11);
      // the connection stays open: the end is known from the last chunk
    });
    const res = await request(url);
    expect(sha(Buffer.concat(await collect(res.body)))).toBe(sha(body));
  });

  it('reads a body without framing until the connection ends; skips a 100 Continue; joins repeated headers', async () => {
    const url = await server((s) => {
      s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nX-A: 1\r\nx-a: 2\r\nDate: now\r\n\r\nhello <xml/>');
    });
    const res = await request(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-a')).toBe('1, 2');
    expect(Buffer.concat(await collect(res.body)).toString()).toBe('hello <xml/>');
  });

  it('fails the body when the connection ends before Content-Length or the last chunk', async () => {
    const short = await server((s) => void s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'));
    await expect(collect((await request(short)).body)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const cut = await server((s) => void s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'));
    await expect(collect((await request(cut)).body)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const reset = await server(
      (s) => void (s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome'), s.resetAndDestroy()),
    );
    await expect(collect((await request(reset)).body)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('rejects what is not HTTP/1.1 and a malformed chunk, with codes', async () => {
    const junk = await server((s) => void s.end('SSH-2.0-OpenSSH\r\n\r\n'));
    await expect(request(junk)).rejects.toMatchObject({ code: 'IC_HTTP_BAD_HEAD' });
    const badLength = await server((s) => void s.end('HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n'));
    await expect(request(badLength)).rejects.toMatchObject({ code: 'IC_HTTP_BAD_HEAD' });
    const badChunk = await server(
      (s) => void s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n'),
    );
    await expect(collect((await request(badChunk)).body)).rejects.toMatchObject({ code: 'IC_HTTP_BAD_CHUNK' });
    const closed = await server((s) => void s.end());
    await expect(request(closed)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('times out waiting for the head, and between body reads, but not while its consumer is not reading', async () => {
    const silent = await server(() => undefined);
    await expect(request(silent, { headersTimeoutMs: 150 })).rejects.toMatchObject({ code: 'IC_HTTP_HEADERS_TIMEOUT' });
    const stalls = await server((s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst'));
    const stalled = await request(stalls, { bodyTimeoutMs: 150 });
    await expect(collect(stalled.body)).rejects.toMatchObject({ code: 'IC_HTTP_BODY_TIMEOUT' });
    // 4 MiB sent at once; the consumer waits 4 body timeouts before reading: paused, the socket's timer is off
    const body = bytes(4 * BODY_CHUNK);
    const fast = await server(
      (s) =>
        void s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])),
    );
    const res = await request(fast, { bodyTimeoutMs: 100 });
    await new Promise((r) => setTimeout(r, 400));
    expect(sha(Buffer.concat(await collect(res.body)))).toBe(sha(body));
  });

  it('hands on a partial chunk from a slow server without waiting for more bytes', async () => {
    let more!: () => void;
    const url = await server((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst');
      more = () => s.end('-last');
    });
    const res = await request(url);
    const [first] = (await once(res.body, 'data')) as [Buffer];
    expect(first.toString()).toBe('first'); // released after the hold, while the server still waits
    more();
    expect(Buffer.concat(await collect(res.body)).toString()).toBe('-last');
  });

  it('closes the connection and stops its timers when the body is dropped; lists open sockets until then', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const url = await server((s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nsome'));
    const sockets = new Set<Socket>();
    const res = await request(url, { sockets });
    await new Promise((r) => setImmediate(r)); // 'some' is held for more
    expect(timers()).toBeGreaterThan(before);
    expect(sockets.size).toBe(1);
    const [socket] = sockets;
    res.body.destroy();
    await once(socket!, 'close');
    expect(sockets.size).toBe(0);
    expect(timers()).toBe(before);
  });
});
