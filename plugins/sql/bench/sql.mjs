// sql: 10,000 generated sessions (about 50 events each) written through the SQL plugin, sessions/s per engine,
// against a floor measured in the same run on the same tables and the same rows:
//   PostgreSQL — COPY of the rows (ids assigned by the client), SQLite — prepared inserts in one transaction,
//   MariaDB — multi-row INSERTs (ids assigned by the client). Target: plugin/floor >= 0.7 per engine.
// The plugin path includes model → rows conversion and checks, and is fed the way the kernel feeds it: up to
// 400 deliveries in flight, acknowledged one by one (batches of 200 sessions per transaction).
// Needs PostgreSQL on 127.0.0.1:5432 (trust) and MariaDB on 127.0.0.1:3306 (root); overrides:
// IC_TEST_POSTGRES_URL, IC_TEST_MYSQL_URL. Usage: npm run bench -- sql [sessions=10000] [events=50] [engines=sqlite,postgres,mysql]
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { createFakeContext } from '@integration-client/plugin-sdk/testing';
import plugin, { openDriver, parseConnectionString, sessionRows, SessionStore, TABLES } from '../dist/index.js';
import { sampleSessions } from '../dist/sample-sessions.js';

const COUNT = Number(process.argv[2] ?? 10_000);
const EVENTS = Number(process.argv[3] ?? 50);
const ENGINES = (process.argv[4] ?? 'sqlite,postgres,mysql').split(',');
const PG_ADMIN = process.env.IC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_ADMIN = process.env.IC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const IN_FLIGHT = 400;

const cols = (t) => TABLES.find((x) => x.name === t).columns.filter((c) => c.kind !== 'id');
const refAt = (t) => cols(t).findIndex((c) => c.kind === 'ref');

/** The same rows the plugin writes, flattened per table with client-assigned ids and parent ids. */
function flatten(all) {
  const out = Object.fromEntries(TABLES.map((t) => [t.name, []]));
  let sid = 0;
  let eid = 0;
  const put = (t, row, parent, id) => {
    const r = row.slice();
    const at = refAt(t);
    if (at >= 0) r[at] = parent;
    out[t].push(id === undefined ? r : [id, ...r]);
  };
  for (const s of all) {
    const id = ++sid;
    put('session', s.session, 0, id);
    for (const e of s.events) {
      const ev = ++eid;
      put('session_event', e.row, id, ev);
      for (const d of e.data) put('session_event_data', d, ev);
      for (const d of e.systemInformation) put('system_information', d, ev);
    }
    for (const [t, list] of Object.entries(s.children)) for (const r of list) put(t, r, id);
  }
  return out;
}

const names = (t, withId) => [...(withId ? ['id'] : []), ...cols(t).map((c) => c.name)];
const withIds = (t) => t === 'session' || t === 'session_event';
const dbTime = (v) =>
  typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v) ? v.replace('T', ' ').replace(/Z$/, '') : v;

const FLOORS = {
  async sqlite(cs, flat) {
    const db = new Database(parseConnectionString(cs).file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const t0 = process.hrtime.bigint();
    db.exec('BEGIN');
    for (const t of TABLES.map((x) => x.name)) {
      const n = names(t, withIds(t));
      const s = db.prepare(
        `INSERT INTO "${t}" (${n.map((x) => `"${x}"`).join(', ')}) VALUES (${n.map(() => '?').join(', ')})`,
      );
      for (const r of flat[t]) s.run(...r.map(dbTime));
    }
    db.exec('COMMIT');
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    db.close();
    return s;
  },
  async postgres(cs, flat) {
    const client = new pg.Client({ connectionString: cs });
    await client.connect();
    const esc = (v) =>
      v === null || v === undefined
        ? '\\N'
        : String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
    const t0 = process.hrtime.bigint();
    await client.query('BEGIN');
    for (const t of TABLES.map((x) => x.name)) {
      const n = names(t, withIds(t));
      const rows = flat[t];
      async function* lines() {
        for (let i = 0; i < rows.length; i += 1000)
          yield (
            rows
              .slice(i, i + 1000)
              .map((r) => r.map(esc).join('\t'))
              .join('\n') + '\n'
          );
      }
      await pipeline(
        Readable.from(lines()),
        client.query(copyStreams.from(`COPY "${t}" (${n.map((x) => `"${x}"`).join(', ')}) FROM STDIN`)),
      );
    }
    await client.query('COMMIT');
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    await client.end();
    return s;
  },
  async mysql(cs, flat) {
    const u = new URL(cs);
    const c = await mysql.createConnection({
      host: u.hostname,
      port: Number(u.port),
      user: u.username,
      database: u.pathname.slice(1),
      charset: 'utf8mb4',
    });
    const t0 = process.hrtime.bigint();
    await c.beginTransaction();
    for (const t of TABLES.map((x) => x.name)) {
      const n = names(t, withIds(t));
      const rows = flat[t];
      for (let i = 0; i < rows.length; i += 2000)
        await c.query(`INSERT INTO \`${t}\` (${n.map((x) => `\`${x}\``).join(', ')}) VALUES ?`, [
          rows.slice(i, i + 2000).map((r) => r.map(dbTime)),
        ]);
    }
    await c.commit();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    await c.end();
    return s;
  },
};

/** A fresh, empty database with the plugin's schema; returns its connection string and a drop function. */
async function freshDatabase(engine, tag) {
  let cs;
  let drop = async () => {};
  const name = `ic_bench_${tag}_${process.pid}`;
  if (engine === 'sqlite') cs = `sqlite:${join(await mkdtemp(join(tmpdir(), 'ic-bench-sql-')), 'bench.db')}`;
  else if (engine === 'postgres') {
    const a = new pg.Client({ connectionString: PG_ADMIN });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name}`);
    await a.query(`CREATE DATABASE ${name}`);
    await a.end();
    const u = new URL(PG_ADMIN);
    u.pathname = `/${name}`;
    cs = u.href;
    drop = async () => {
      const b = new pg.Client({ connectionString: PG_ADMIN });
      await b.connect();
      await b.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await b.end();
    };
  } else {
    const u = new URL(MYSQL_ADMIN);
    const a = await mysql.createConnection({
      host: u.hostname,
      port: Number(u.port || 3306),
      user: u.username || 'root',
    });
    await a.query(`DROP DATABASE IF EXISTS ${name}`);
    await a.query(`CREATE DATABASE ${name}`);
    await a.end();
    u.pathname = `/${name}`;
    cs = u.href;
    drop = async () => {
      const b = await mysql.createConnection({
        host: u.hostname,
        port: Number(u.port || 3306),
        user: u.username || 'root',
      });
      await b.query(`DROP DATABASE IF EXISTS ${name}`);
      await b.end();
    };
  }
  const driver = openDriver(parseConnectionString(cs), cs);
  await new SessionStore(driver).migrate();
  await driver.close();
  return { cs, drop };
}

async function throughPlugin(cs, sessions) {
  const ctx = createFakeContext({ config: { connectionString: cs, storeSystemInformation: true, batchSize: 200 } });
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
        { operation: 'session-data', site: { host: s.supportSiteHost }, session: s, xml: '' },
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
