/**
 * One HTTP/1.1 request on a connection of its own (`Connection: close`, as the API documentation asks), for the API
 * calls whose bodies are large: reports, recordings, backups. The socket reads (`onread`) straight into the free
 * tail of a 1 MiB chunk, so a download allocates one buffer per MiB instead of one per 16 KiB TLS record, copies
 * nothing after TLS's own copy out of OpenSSL, and every stage after it (length check, plugin boundary, file writes)
 * works per MiB. undici's `request` gave 0.45–0.62 of curl's rate on the same download; this reads at 0.83–0.94
 * (ADR 012).
 *
 * What it parses: a status line, header lines, informational (1xx) responses skipped, then a body framed by
 * `Transfer-Encoding: chunked`, by `Content-Length`, or by the end of the connection. Every failure is an Error with
 * a `code` (`http-errors.ts` maps it to a coded SiteAccessError); none is thrown past the promise or the body stream.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { Readable } from 'node:stream';

/** Bytes per chunk handed on. */
export const BODY_CHUNK = 1024 * 1024;
/** A partial chunk waits at most this long for more bytes (a slow appliance still shows steady progress). */
const HOLD_MS = 20;
/** The longest response head accepted. */
const MAX_HEAD = 64 * 1024;

export interface Http1Options {
  /** `https:` (TLS) or `http:` (tests against a plain simulator). */
  readonly url: URL;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** TLS: the trusted CAs (default: Node's), and whether an untrusted certificate is refused. */
  readonly secureContext?: SecureContext;
  readonly rejectUnauthorized?: boolean;
  readonly connectTimeoutMs?: number;
  /** Idle limits: waiting for the response head, and between two reads of the body while it is being read. */
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Bytes per chunk of the body handed on (default BODY_CHUNK). */
  readonly chunkBytes?: number;
  /** Sockets still open are kept here (added on connect, removed on close), so their owner can close them. */
  readonly sockets?: Set<Socket>;
}

export interface Http1Response {
  readonly status: number;
  /** Header values by lower-case name; repeated headers joined with `, `. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Readable;
}

/** An Error with a code, for the failures this module finds itself. */
export function httpError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** Sends one request and resolves once the response head is in; the body streams from there. */
export function http1Request(o: Http1Options): Promise<Http1Response> {
  return new Promise((resolve, reject) => {
    const port = Number(o.url.port) || (o.url.protocol === 'https:' ? 443 : 80);
    const host = o.url.hostname.replace(/^\[|\]$/g, '');
    const reader = new ResponseReader(o, resolve, reject);
    // `onread` (net.connect's, which tls.connect passes on; @types/node lists it for net only): each read lands in
    // the buffer `buffer()` returns, the free tail of the current chunk
    const onread = {
      buffer: (): Buffer => reader.chunks.tail(),
      callback: (n: number): boolean => (reader.read(n), true),
    };
    const socket =
      o.url.protocol === 'https:'
        ? tlsConnect({
            host,
            port,
            ...(isIP(host) ? {} : { servername: host }),
            ...(o.secureContext ? { secureContext: o.secureContext } : {}),
            rejectUnauthorized: o.rejectUnauthorized ?? true,
            ...({ onread } as object),
          })
        : netConnect({ host, port, onread });
    reader.attach(socket, o.url.protocol === 'https:');
  });
}

/** Reads one response from its socket: the head, then the body by its framing, into a BodyStream. */
class ResponseReader {
  #socket!: Socket;
  #head = '';
  #body: BodyStream | undefined;
  /** Body framing: bytes left by Content-Length, or -1 chunked, or -2 until the connection ends. */
  #left = -2;
  #chunk = new ChunkedDecoder();
  #settled = false;
  /** Where the reads land; the head's bytes land there too and are read over by the body's. */
  readonly chunks: Chunks;

  constructor(
    private readonly o: Http1Options,
    private readonly resolve: (r: Http1Response) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.chunks = new Chunks(o.chunkBytes ?? BODY_CHUNK);
  }

  attach(socket: Socket, tls: boolean): void {
    this.#socket = socket;
    this.o.sockets?.add(socket);
    const connectTimer = setTimeout(
      () => socket.destroy(httpError('ETIMEDOUT', `no connection within ${this.o.connectTimeoutMs ?? 10_000} ms`)),
      this.o.connectTimeoutMs ?? 10_000,
    );
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      socket.setTimeout(this.o.headersTimeoutMs);
      const body = this.o.body ?? '';
      const lines = [
        `${this.o.method} ${this.o.url.pathname}${this.o.url.search} HTTP/1.1`,
        `host: ${this.o.url.host}`,
      ];
      for (const [k, v] of Object.entries(this.o.headers)) lines.push(`${k}: ${v}`);
      if (this.o.method === 'POST') lines.push(`content-length: ${Buffer.byteLength(body)}`);
      lines.push('connection: close', '', body);
      socket.write(lines.join('\r\n'));
    });
    socket.on('timeout', () =>
      socket.destroy(
        this.#body
          ? httpError('IC_HTTP_BODY_TIMEOUT', `no body data for ${this.o.bodyTimeoutMs} ms`)
          : httpError('IC_HTTP_HEADERS_TIMEOUT', `no response within ${this.o.headersTimeoutMs} ms`),
      ),
    );
    socket.on('end', () => this.#ended());
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => {
      clearTimeout(connectTimer);
      this.o.sockets?.delete(socket);
      if (!this.#settled) this.#fail(httpError('ECONNRESET', 'the connection closed before a response'));
      else if (this.#body && !this.#body.complete)
        this.#fail(httpError('ECONNRESET', 'the connection closed mid-body'));
    });
  }

  /** `n` bytes arrived in the chunk's free tail. */
  read(n: number): void {
    const { buf, end: from } = this.chunks;
    const to = from + n;
    let at = from;
    if (!this.#settled) {
      at = this.#readHead(buf, from, to);
      if (at < 0) return;
    }
    const body = this.#body;
    if (!body || body.complete) return;
    if (this.#left === -1) {
      const done = this.#chunk.decode(buf, at, to, (s, e) => this.chunks.keep(s, e));
      if (done === 'error') return this.#fail(httpError('IC_HTTP_BAD_CHUNK', 'the chunked body is malformed'));
      this.chunks.handOn(body);
      if (done) this.#finish();
    } else {
      const take = this.#left >= 0 ? Math.min(this.#left, to - at) : to - at;
      this.chunks.keep(at, at + take);
      this.chunks.handOn(body);
      if (this.#left >= 0 && (this.#left -= take) === 0) this.#finish();
    }
  }

  /** Adds bytes to the head; once it is complete, settles the promise. Returns where the body starts, or -1. */
  #readHead(buf: Buffer, from: number, to: number): number {
    this.#head += buf.toString('latin1', from, to);
    for (;;) {
      const end = this.#head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.#head.length > MAX_HEAD) this.#fail(httpError('IC_HTTP_BAD_HEAD', 'the response head is too long'));
        return -1;
      }
      const head = this.#head.slice(0, end);
      const rest = this.#head.slice(end + 4);
      const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?\r?(?:\n|$)/.exec(head);
      if (!m) {
        this.#fail(httpError('IC_HTTP_BAD_HEAD', `not an HTTP/1.1 response: ${JSON.stringify(head.slice(0, 40))}`));
        return -1;
      }
      const status = Number(m[1]);
      if (status >= 100 && status < 200) {
        this.#head = rest; // an informational response: the real one follows
        continue;
      }
      const headers = new Map<string, string>();
      for (const line of head.slice(m[0].length).split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        const prior = headers.get(name);
        headers.set(name, prior === undefined ? value : `${prior}, ${value}`);
      }
      const length = headers.get('content-length');
      if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) this.#left = -1;
      else if (length !== undefined) {
        if (!/^\d+$/.test(length)) {
          this.#fail(httpError('IC_HTTP_BAD_HEAD', `a bad Content-Length: ${length}`));
          return -1;
        }
        this.#left = Number(length);
      }
      this.#head = '';
      this.#settled = true;
      this.#body = new BodyStream(this.#socket, this.o.bodyTimeoutMs, this.chunks);
      this.resolve({ status, headers, body: this.#body });
      if (this.#left === 0) this.#finish();
      // where the body starts in this read: `rest` (one latin1 character per byte) is the tail of this read
      return to - rest.length;
    }
  }

  #ended(): void {
    if (this.#body && !this.#body.complete && this.#left === -2) this.#finish();
  }

  #finish(): void {
    this.#body?.end();
    this.#socket.destroy();
  }

  #fail(err: Error): void {
    if (!this.#settled) {
      this.#settled = true;
      this.reject(err);
    } else if (this.#body && !this.#body.complete) this.#body.destroy(err);
    this.#socket.destroy();
  }
}

/** Reads go to the free tail of a chunk smaller than this; a chunk with less free is handed on as it is. */
const MIN_TAIL = 16 * 1024;

/**
 * The chunk the socket reads into. Bytes `[start, end)` are body bytes not yet handed on; a read lands at `end`, and
 * `keep(s, e)` makes its body bytes (with chunked framing, several ranges) follow on at `end`, moving them down over
 * framing and head bytes when needed (a copy within the read, only for those; none for a plain body).
 */
class Chunks {
  buf: Buffer;
  start = 0;
  end = 0;
  constructor(readonly size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  /** Where the next read lands: a new chunk once this one has less than MIN_TAIL free (after `take` emptied it). */
  tail(): Buffer {
    if (this.buf.length - this.end < MIN_TAIL && this.start === this.end) {
      this.buf = Buffer.allocUnsafe(this.size);
      this.start = this.end = 0;
    }
    return this.buf.subarray(this.end);
  }
  keep(s: number, e: number): void {
    if (s !== this.end) this.buf.copyWithin(this.end, s, e);
    this.end += e - s;
  }
  /** Hands the chunk's new bytes to the body when it is (almost) full; otherwise the body holds it for HOLD_MS. */
  handOn(body: BodyStream): void {
    if (this.buf.length - this.end < MIN_TAIL) body.release();
    else body.hold();
  }
  /** The bytes not yet handed on (a view: the chunk's later bytes go after them, never over them). */
  take(): Buffer | undefined {
    if (this.start === this.end) return undefined;
    const view = this.buf.subarray(this.start, this.end);
    this.start = this.end;
    return view;
  }
}

/**
 * The body as a Node Readable of chunks of up to `chunkBytes` bytes: a chunk is pushed when it is full or has waited
 * HOLD_MS. When the consumer has a chunk's worth unread, the socket is paused (and its idle limit with it) until the
 * consumer reads again.
 */
class BodyStream extends Readable {
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #done = false;

  constructor(
    private readonly socket: Socket,
    private readonly idleMs: number,
    private readonly chunks: Chunks,
  ) {
    super({ highWaterMark: chunks.size });
    socket.setTimeout(idleMs);
    // A failure can come before the consumer listens (in the read that completed the head, or while a handler
    // prepares): it stays on the stream (`errored`, seen by pipeline and for-await) instead of an unhandled 'error'.
    this.on('error', () => undefined);
  }

  /** True once the body has ended or was destroyed: later bytes and failures are not its business. */
  get complete(): boolean {
    return this.#done || this.destroyed;
  }

  hold(): void {
    if (this.chunks.end > this.chunks.start) this.#timer ??= setTimeout(() => this.release(), HOLD_MS);
  }

  end(): void {
    this.release();
    this.#done = true;
    this.push(null);
  }

  override _read(): void {
    if (this.#paused) {
      this.#paused = false;
      this.socket.setTimeout(this.idleMs);
      this.socket.resume();
    }
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    clearTimeout(this.#timer);
    this.#done = true;
    this.socket.destroy();
    cb(err);
  }

  release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.destroyed) return;
    const view = this.chunks.take();
    if (!view) return;
    if (!this.push(view) && !this.#paused) {
      this.#paused = true;
      this.socket.setTimeout(0);
      this.socket.pause();
    }
  }
}

/** `Transfer-Encoding: chunked`, decoded across reads. */
class ChunkedDecoder {
  /** 'size': reading a size line; 'data': `#left` bytes of data; 'crlf': the CRLF after data; 'trailer': lines. */
  #state: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
  #line = '';
  #left = 0;

  /** Hands data ranges of `buf[from, to)` to `data`; true once the last chunk and trailer are read. */
  decode(buf: Buffer, from: number, to: number, data: (s: number, e: number) => void): boolean | 'error' {
    let i = from;
    while (i < to) {
      if (this.#state === 'data') {
        const take = Math.min(this.#left, to - i);
        data(i, i + take);
        i += take;
        this.#left -= take;
        if (this.#left === 0) this.#state = 'crlf';
        continue;
      }
      const nl = buf.indexOf(10, i);
      const end = nl < 0 || nl >= to ? to : nl;
      this.#line += buf.toString('latin1', i, end);
      if (this.#line.length > 4096) return 'error';
      i = end;
      if (nl < 0 || nl >= to) break;
      i++;
      const line = this.#line.replace(/\r$/, '');
      this.#line = '';
      if (this.#state === 'crlf') {
        if (line !== '') return 'error';
        this.#state = 'size';
      } else if (this.#state === 'size') {
        const size = /^([0-9a-fA-F]{1,12})\s*(?:;.*)?$/.exec(line);
        if (!size) return 'error';
        this.#left = parseInt(size[1]!, 16);
        this.#state = this.#left === 0 ? 'trailer' : 'data';
      } else if (line === '') return true; // the empty line after the trailer
    }
    return false;
  }
}
