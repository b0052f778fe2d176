// @ts-check
// JSON lines file: appends one JSON line per session model to a file. Built from `ic plugin new jsonl`.
// The host validates the config against config.schema.json before create() sees it, runs this module in a
// worker thread of its own, and calls the handler once per session. A session that comes again (after a crash
// between our append and the host's ledger) is recognised by its site and lsid and skipped, so each session is
// in the file once. The handler never reads `item.session`: it takes the model's JSON text (`modelJson`) and the
// lsid (`item.lsid`), so the session is never parsed in this worker.
import { createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, appendFile, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { checkResult, defineDestination, DestinationError, modelJson } from '@integration-client/plugin-sdk';

/** @typedef {{ path: string, signingKey?: string }} Config */

/** Least milliseconds between the starts of two appends (each ends with an fsync). */
const GROUP_MS = 20;

/** The `site lsid` keys already in the file. */
async function keysIn(path) {
  const keys = new Set();
  try {
    await access(path);
  } catch {
    return keys;
  }
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    if (!line) continue;
    try {
      const row = JSON.parse(line);
      keys.add(`${row.site} ${row.session.lsid}`);
    } catch {
      // A torn last line from a crash: ignored; the session it held comes again and is appended.
    }
  }
  return keys;
}

export default defineDestination(
  /** @type {import('@integration-client/plugin-sdk').DestinationDefinition<Config>} */ ({
    id: 'jsonl',
    async create(ctx) {
      const { path, signingKey } = ctx.config;
      await mkdir(dirname(path), { recursive: true });
      const seen = await keysIn(path);
      // Group commit: lines that arrive while a write is in flight or waiting go out together in the next append,
      // with one fsync for all of them, and appends start at most every GROUP_MS; each delivery is acknowledged only
      // after the fsync that covers its line. (Without the interval, a plugin worker that is otherwise idle started
      // an append for every few lines: ~950 appends and fsyncs per 10,000 sessions instead of ~130 in the host's
      // busy thread.)
      /** @type {{ key: string, line: string, resolve: (ack: any) => void, reject: (err: unknown) => void }[]} */
      let pending = [];
      /** @type {Promise<void> | undefined} */
      let writing;
      /** @type {Map<string, Promise<unknown>>} */
      const writes = new Map();
      let lastStart = -Infinity;
      const writeBatches = async () => {
        while (pending.length) {
          // Lines handed over in this turn join the append, and it waits for the interval since the last one.
          const wait = lastStart + GROUP_MS - performance.now();
          await new Promise((resolve) => (wait > 0 ? setTimeout(resolve, wait) : setImmediate(resolve)));
          lastStart = performance.now();
          const batch = pending;
          pending = [];
          try {
            await appendFile(path, batch.map((b) => b.line).join(''), { flush: true });
          } catch (err) {
            for (const b of batch) {
              seen.delete(b.key);
              b.reject(
                new DestinationError(
                  'IC_ERR_DESTINATION_WRITE_FAILED',
                  `cannot append to ${path}: ${/** @type {Error} */ (err).message}`,
                  { cause: err },
                ),
              );
            }
            continue;
          }
          for (const b of batch) b.resolve({ status: 'written', location: path, bytes: Buffer.byteLength(b.line) });
        }
        writing = undefined;
      };
      return {
        async check() {
          try {
            const handle = await open(path, 'a');
            await handle.close();
            return checkResult([{ name: 'file', ok: true, message: `${path} can be appended to` }]);
          } catch (err) {
            return checkResult([{ name: 'file', ok: false, message: /** @type {Error} */ (err).message }]);
          }
        },
        handlers: {
          'session-data'(item) {
            const key = `${item.site.host} ${item.lsid}`;
            // Already in the file: skipped. Still being written: skipped once (and only if) that write lands.
            const inFlight = writes.get(key);
            if (inFlight) return inFlight.then(() => ({ status: 'skipped', location: path }));
            if (seen.has(key)) return Promise.resolve({ status: 'skipped', location: path });
            seen.add(key);
            // The session's JSON as it crossed from the host: neither parsed nor serialised again in this worker.
            const body = modelJson(item);
            const hmac = signingKey ? createHmac('sha256', signingKey).update(body).digest('hex') : undefined;
            const line = `{"site":${JSON.stringify(item.site.host)},"session":${body}${hmac ? `,"hmac":"${hmac}"` : ''}}\n`;
            const written = new Promise((resolve, reject) => {
              pending.push({ key, line, resolve, reject });
              writing ??= writeBatches();
            });
            writes.set(key, written);
            const forget = () => writes.delete(key);
            written.then(forget, forget);
            return written;
          },
        },
        async close() {
          await writing;
        },
      };
    },
  }),
);
