// The writing thread of the e2e benchmark's pipeline bound (see pipeline-bound.mjs).
import { parentPort, workerData } from 'node:worker_threads';
import { sessionRows } from '../../plugins/sql/dist/index.js';
import { flatten, PLAIN_WRITERS } from '../../plugins/sql/bench/lib/floors.mjs';

const BATCH = 500;
const LINGER_MS = 20; // SQLite: as the plugin, a batch that is not full waits this long for more
const { engine, cs } = workerData;
const writers = await Promise.all(
  Array.from({ length: engine === 'postgres' ? 2 : 1 }, () => PLAIN_WRITERS[engine](cs)),
);
const ids = { session: 0, event: 0 };
const queue = [];
const idle = [...writers];

function drain() {
  while (idle.length && queue.length) {
    const writer = idle.pop();
    const batch = queue.splice(0, BATCH);
    void Promise.resolve(writer.write(flatten(batch, ids))).then(() => {
      parentPort.postMessage({ written: batch.length });
      idle.push(writer);
      schedule();
    });
  }
}
let timer;
function schedule() {
  if (timer || !queue.length) return;
  if (engine === 'sqlite' && queue.length < BATCH) timer = setTimeout(() => ((timer = undefined), drain()), LINGER_MS);
  else drain();
}

parentPort.on('message', (models) => {
  for (const json of models) queue.push(sessionRows(JSON.parse(json), true));
  schedule();
});
parentPort.postMessage({ ready: true });
