/**
 * Moves a byte stream across the worker boundary without buffering it: the sender posts copies of chunks and
 * stops when `WINDOW` bytes are unacknowledged; the receiver credits bytes as its reader takes them. Either side
 * can end it: the source fails (the reader's stream errors with the coded error) or the reader gives up (the
 * source is destroyed so its connection is freed).
 */
import { finished as whenFinished, Readable } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import { deserializeIcError, serializeIcError } from '@integration-client/plugin-sdk';
import type { StreamDown, StreamUp } from './protocol.js';

/** Bytes in flight before the sender waits for credit. */
const WINDOW = 1 << 20;

/**
 * Host side: pumps `source` into `port`. `onProgress` is called whenever bytes move (for idle timeouts).
 * Resolves when the stream ended, failed or was cancelled; never rejects.
 */
export function sendStream(port: MessagePort, source: Readable, onProgress: () => void): Promise<void> {
  return new Promise((resolve) => {
    let outstanding = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      source.off('data', onData);
      port.close();
      resolve();
    };
    const post = (m: StreamDown, transfer?: ArrayBuffer[]) => {
      if (!finished) port.postMessage(m, transfer);
    };
    const onData = (chunk: Buffer) => {
      // A copy of exactly these bytes: cloning a Buffer would copy its whole (pooled) ArrayBuffer.
      const copy = new Uint8Array(chunk);
      post({ chunk: copy }, [copy.buffer]);
      outstanding += chunk.byteLength; // not copy.byteLength: transferring detached it
      if (outstanding >= WINDOW) source.pause();
      onProgress();
    };
    port.on('message', (m: StreamUp) => {
      if ('credit' in m) {
        outstanding -= m.credit;
        onProgress();
        if (outstanding < WINDOW && source.isPaused() && !finished) source.resume();
      } else {
        if (!source.destroyed) source.destroy();
        finish();
      }
    });
    port.on('close', finish);
    source.on('data', onData);
    // finished() also reports a source that failed or closed before it was handed over. The port is left for
    // the reader to close: a message posted just before close() may never arrive.
    whenFinished(source, (err) => {
      if (err) {
        source.off('data', onData);
        post({ error: serializeIcError(err, 'IC_ERR_SITE_UNAVAILABLE') });
        resolve();
      } else post({ end: true });
    });
  });
}

/** Worker side: a Readable fed from `port`; reading it credits the sender. */
export function receiveStream(port: MessagePort): Readable {
  let owed = 0;
  let ended = false;
  const readable = new Readable({
    read() {
      if (owed > 0) {
        port.postMessage({ credit: owed } satisfies StreamUp);
        owed = 0;
      }
    },
    destroy(err, callback) {
      if (!ended) port.postMessage({ cancel: true } satisfies StreamUp);
      port.close();
      callback(err);
    },
  });
  // The plugin sees a source error when it reads (or pipes) the stream; one that has stopped listening, or never
  // started, must not have its worker crash on an unhandled 'error' event.
  readable.on('error', () => undefined);
  port.on('message', (m: StreamDown) => {
    if ('chunk' in m) {
      const bytes = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
      if (readable.push(bytes)) port.postMessage({ credit: bytes.byteLength } satisfies StreamUp);
      else owed += bytes.byteLength;
    } else if ('end' in m) {
      ended = true;
      readable.push(null);
      port.close();
    } else {
      ended = true;
      readable.destroy(deserializeIcError(m.error));
    }
  });
  return readable;
}
