// The e2e benchmark's pipeline bound: the fastest a destination in a worker thread can be handed models here. The same
// two threads as the engine — this one downloads and parses the report, a worker thread writes — with nothing
// else: each model crosses as JSON text (as in the engine), the worker turns it into the plugin's rows and writes
// them the floors' plain way (SQLite prepared inserts, PostgreSQL COPY on two connections) in batches of 500 as they
// come. No delivered-items ledger, no replace-in-place, no acknowledgements per session, no call timeouts, no
// plugin SDK: what the kernel adds to this is the difference between the bound and the e2e figure.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { SiteClient } from '@integration-client/core';

/** Sessions handed to the worker before it has written earlier ones (its best setting measured: 3000). */
const IN_FLIGHT = 3000;
/** Models are sent once per this many ms of parsing (the engine's turn length). */
const TURN_MS = 5;

/** Sessions/s through the bound's pipeline, from `site` into the empty database `cs` of `engine`. */
export async function pipelineBound(site, log, engine, cs) {
  const worker = new Worker(new URL('./pipeline-bound-worker.mjs', import.meta.url), { workerData: { engine, cs } });
  let written = 0;
  let wake;
  const failed = once(worker, 'error').then(([err]) => Promise.reject(err));
  failed.catch(() => undefined);
  const next = () => Promise.race([new Promise((r) => (wake = r)), failed]);
  worker.on('message', (m) => {
    written += m.written ?? 0;
    wake?.();
  });
  await next(); // connected, statements prepared
  const client = await SiteClient.create({ site, logger: log });
  const t0 = process.hrtime.bigint();
  let sent = 0;
  let batch = [];
  let turn = performance.now();
  for await (const item of client.sessions({ end_time: 0, duration: 0 })) {
    if (!item.ok) continue;
    batch.push(JSON.stringify(item.model));
    sent++;
    if (performance.now() - turn >= TURN_MS || sent - written >= IN_FLIGHT) {
      worker.postMessage(batch);
      batch = [];
      while (sent - written >= IN_FLIGHT) await next();
      await new Promise(setImmediate);
      turn = performance.now();
    }
  }
  worker.postMessage(batch);
  while (written < sent) await next();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await client.close();
  await worker.terminate();
  return sent / s;
}
