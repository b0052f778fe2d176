// @ts-check
// JSON lines file: appends one JSON line per session model to a file. Built from `ic plugin new jsonl`.
// The host validates the config against config.schema.json before create() sees it, runs this module in a
// worker thread of its own, and calls the handler once per session. A session that comes again (after a crash
// between our append and the host's ledger) is recognised by its site and lsid and skipped, so each session is
// in the file once.
import { createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, appendFile, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { checkResult, defineDestination, DestinationError } from '@integration-client/plugin-sdk';

/** @typedef {{ path: string, signingKey?: string }} Config */

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
      // Appends are serialised so concurrent deliveries never interleave inside a line.
      let queue = Promise.resolve();
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
            const key = `${item.site.host} ${item.session.lsid}`;
            const run = queue.then(async () => {
              if (seen.has(key)) return /** @type {const} */ ({ status: 'skipped', location: path });
              const body = JSON.stringify(item.session);
              const hmac = signingKey ? createHmac('sha256', signingKey).update(body).digest('hex') : undefined;
              const line = `{"site":${JSON.stringify(item.site.host)},"session":${body}${hmac ? `,"hmac":"${hmac}"` : ''}}\n`;
              try {
                await appendFile(path, line, { flush: true });
              } catch (err) {
                throw new DestinationError(
                  'IC_ERR_DESTINATION_WRITE_FAILED',
                  `cannot append to ${path}: ${/** @type {Error} */ (err).message}`,
                  { cause: err },
                );
              }
              seen.add(key);
              return /** @type {const} */ ({ status: 'written', location: path, bytes: Buffer.byteLength(line) });
            });
            queue = run.then(
              () => undefined,
              () => undefined,
            );
            return run;
          },
        },
        async close() {
          await queue;
        },
      };
    },
  }),
);
