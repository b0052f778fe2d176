import { Readable, Transform, type TransformCallback } from 'node:stream';
import { SiteAccessError } from '@integration-client/plugin-sdk';

/** How many leading bytes are looked at to tell an XML error document from a binary file. */
const SNIFF = 256;

/** True when the leading bytes look like XML (`<?xml`, `<error`, after an optional UTF-8 BOM / whitespace). */
export function looksLikeXml(head: Buffer): boolean {
  // read as latin1, a UTF-8 byte-order mark is the three characters EF BB BF
  return /^(\xEF\xBB\xBF)?\s*<(\?xml|error|[a-z_]+:error)/i.test(head.subarray(0, SNIFF).toString('latin1'));
}

/**
 * Passes the bytes through unchanged and in order, counts them, and at the end fails with IC_ERR_SITE_BODY_MISMATCH
 * when a `Content-Length` was announced and a different number of bytes arrived. (The body arrives already joined
 * into chunks of up to 1 MiB, see `http1.ts`.)
 */
export class LengthCheck extends Transform {
  bytes = 0;
  constructor(
    private readonly expected: number | undefined,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.expected !== undefined && this.bytes !== this.expected) {
      cb(
        new SiteAccessError(
          'IC_ERR_SITE_BODY_MISMATCH',
          `${this.what}: received ${this.bytes} of ${this.expected} announced bytes`,
          { details: { bytes: this.bytes, expected: this.expected } },
        ),
      );
    } else cb();
  }
}

/**
 * Reads the first chunk(s) of a stream, up to `SNIFF` bytes. Returns them and a stream of the whole body: the same
 * stream with the bytes pushed back, or — when the body was shorter and has ended — a new stream of those bytes.
 */
export async function peek(stream: Readable): Promise<{ head: Buffer; body: Readable }> {
  const parts: Buffer[] = [];
  let n = 0;
  for (;;) {
    const chunk = stream.read() as Buffer | null;
    if (chunk) {
      parts.push(chunk);
      n += chunk.length;
      if (n >= SNIFF) break;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    const ended = await new Promise<boolean>((resolve, reject) => {
      const done = (v: boolean) => {
        stream.off('readable', onReadable).off('end', onEnd).off('error', onError);
        resolve(v);
      };
      const onReadable = () => done(false);
      const onEnd = () => done(true);
      const onError = (e: Error) => {
        stream.off('readable', onReadable).off('end', onEnd);
        reject(e);
      };
      stream.once('readable', onReadable).once('end', onEnd).once('error', onError);
    });
    if (ended) break;
  }
  const head = Buffer.concat(parts);
  if (stream.readableEnded) return { head, body: Readable.from(head.length ? [head] : []) };
  if (head.length) stream.unshift(head);
  return { head, body: stream };
}
