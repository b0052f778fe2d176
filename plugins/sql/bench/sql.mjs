// sql: 10,000 generated sessions (about 50 events each) written through the SQL plugin, sessions/s per engine,
// against a floor measured in the same run on the same tables and the same rows:
//   PostgreSQL — COPY of the rows (ids assigned by the client), SQLite — prepared inserts in one transaction,
//   MariaDB — multi-row INSERTs (ids assigned by the client). Target: plugin/floor >= 0.7 per engine.
// The plugin path includes model → rows conversion and checks, and is fed the way the kernel feeds it: up to
// 1000 deliveries in flight, acknowledged one by one (batches of 500 sessions per transaction).
// Needs PostgreSQL on 127.0.0.1:5432 (trust) and MariaDB on 127.0.0.1:3306 (root); overrides:
// IC_TEST_POSTGRES_URL, IC_TEST_MYSQL_URL. Usage: npm run bench -- sql [sessions=10000] [events=50] [engines=sqlite,postgres,mysql]
import { createFakeContext } from '@integration-client/plugin-sdk/testing';
import plugin, { sessionRows } from '../dist/index.js';
import { flatten, FLOORS, freshDatabase } from './lib/floors.mjs';
import { sampleSessions } from '../dist/sample-sessions.js';

const COUNT = Number(process.argv[2] ?? 10_000);
const EVENTS = Number(process.argv[3] ?? 50);
const ENGINES = (process.argv[4] ?? 'sqlite,postgres,mysql').split(',');
const IN_FLIGHT = 1000;

async function throughPlugin(cs, sessions) {
  const ctx = createFakeContext({ config: { connectionString: cs, storeSystemInformation: true, batchSize: 500 } });
  const dest = await plugin.create(ctx);
  await dest.check(); // connect + schema outside the timing, as a running service would have done
  const handler = dest.handlers['session-data'];
  const signal = new AbortController().signal;
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < sessions.length) {
      const s = sessions[next++];
      const ack = await handler(
        { operation: 'session-data', site: { host: s.supportSiteHost }, lsid: s.lsid, session: s, xml: '' },
        { signal },
      );
      if (ack.status !== 'written') throw new Error(`unexpected ack ${JSON.stringify(ack)}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await dest.close();
  return s;
}

const sessions = sampleSessions({ count: COUNT, events: EVENTS, host: 'bench.example.com' });
const flat = flatten(sessions.map((s) => sessionRows(s, true)));
const rowCount = Object.values(flat).reduce((n, r) => n + r.length, 0);
console.log(`sql: ${COUNT} sessions × ${EVENTS} events = ${rowCount.toLocaleString()} rows per run`);
const results = {};
for (const engine of ENGINES) {
  const runs = { floor: [], plugin: [] };
  for (let round = 0; round < 2; round++) {
    for (const kind of round ? ['plugin', 'floor'] : ['floor', 'plugin']) {
      const db = await freshDatabase(engine, kind);
      global.gc?.();
      const s = kind === 'floor' ? await FLOORS[engine](db.cs, flat) : await throughPlugin(db.cs, sessions);
      runs[kind].push(COUNT / s);
      await db.drop();
      console.log(`  ${engine.padEnd(8)} ${kind.padEnd(6)} ${s.toFixed(2)} s  ${(COUNT / s).toFixed(0)} sessions/s`);
    }
  }
  const value = Math.max(...runs.plugin);
  const floor = Math.max(...runs.floor);
  results[engine] = {
    value: Math.round(value),
    floor: Math.round(floor),
    ratio: Math.round((value / floor) * 1000) / 1000,
  };
  console.log(
    `  ${engine}: plugin ${value.toFixed(0)} / floor ${floor.toFixed(0)} sessions/s = ${(value / floor).toFixed(3)} (best of 2 each)`,
  );
}
const worst = Object.entries(results).sort((a, b) => a[1].ratio - b[1].ratio)[0];
console.log(
  JSON.stringify({
    name: 'sql',
    metric: `sessions/s through the plugin, lowest ratio of ${Object.keys(results).join('/')} (${worst[0]})`,
    value: worst[1].value,
    unit: 'sessions/s',
    floor: worst[1].floor,
    ratio: worst[1].ratio,
    target: 0.7,
    pass: Object.values(results).every((r) => r.ratio >= 0.7),
    engines: results,
  }),
);
