// Floors of the `sql` benchmark, shared with the `e2e` benchmark: the same rows the plugin writes, written the
// fastest plain way per engine, and fresh databases with the plugin's schema.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { openDriver, parseConnectionString, SessionStore, TABLES } from '../../dist/index.js';

export const PG_ADMIN = process.env.IC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_ADMIN = process.env.IC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

const cols = (t) => TABLES.find((x) => x.name === t).columns.filter((c) => c.kind !== 'id');
const refAt = (t) => cols(t).findIndex((c) => c.kind === 'ref');

/**
 * The same rows the plugin writes, flattened per table with client-assigned ids and parent ids. `ids` carries the
 * last ids used on to the next call (batches written one after another into one database).
 */
export function flatten(all, ids = { session: 0, event: 0 }) {
  const out = Object.fromEntries(TABLES.map((t) => [t.name, []]));
  const put = (t, row, parent, id) => {
    const r = row.slice();
    const at = refAt(t);
    if (at >= 0) r[at] = parent;
    out[t].push(id === undefined ? r : [id, ...r]);
  };
  for (const s of all) {
    const id = ++ids.session;
    put('session', s.session, 0, id);
    for (const e of s.events) {
      const ev = ++ids.event;
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

/**
 * The fastest plain way per engine to write flattened rows in one transaction: SQLite prepared inserts, PostgreSQL
 * COPY. Each entry takes a connection string and returns (or resolves to) { write(flat), close() }; the floors
 * write every row in one call, the e2e benchmark's pipeline bound (integration-tests/bench/pipeline-bound.mjs) batch
 * after batch.
 */
export const PLAIN_WRITERS = {
  sqlite(cs) {
    const db = new Database(parseConnectionString(cs).file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const statements = TABLES.map(({ name: t }) => {
      const n = names(t, withIds(t));
      return [
        t,
        db.prepare(`INSERT INTO "${t}" (${n.map((x) => `"${x}"`).join(', ')}) VALUES (${n.map(() => '?').join(', ')})`),
      ];
    });
    return {
      write(flat) {
        db.exec('BEGIN');
        for (const [t, s] of statements) for (const r of flat[t]) s.run(...r.map(dbTime));
        db.exec('COMMIT');
      },
      close: () => db.close(),
    };
  },
  async postgres(cs) {
    const client = new pg.Client({ connectionString: cs });
    await client.connect();
    const esc = (v) =>
      v === null || v === undefined
        ? '\\N'
        : String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
    return {
      async write(flat) {
        await client.query('BEGIN');
        for (const t of TABLES.map((x) => x.name)) {
          const n = names(t, withIds(t));
          const rows = flat[t];
          if (!rows.length) continue;
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
      },
      close: () => client.end(),
    };
  },
};

/** Seconds to write `flat` the plain way of PLAIN_WRITERS (connection and statements made before the clock). */
async function plainFloor(engine, cs, flat) {
  const writer = await PLAIN_WRITERS[engine](cs);
  const t0 = process.hrtime.bigint();
  await writer.write(flat);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await writer.close();
  return s;
}

export const FLOORS = {
  sqlite: (cs, flat) => plainFloor('sqlite', cs, flat),
  postgres: (cs, flat) => plainFloor('postgres', cs, flat),
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
export async function freshDatabase(engine, tag) {
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
