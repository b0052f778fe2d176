/**
 * Real databases for the tests: a SQLite file in a temporary directory, and a fresh database on the
 * PostgreSQL (127.0.0.1:5432, trust) and MariaDB (127.0.0.1:3306, root) services of this machine, dropped after.
 * Override the servers with IC_TEST_POSTGRES_URL / IC_TEST_MYSQL_URL (admin connections).
 */
import { mkdtemp, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Ack, Destination, Item, Session } from '@integration-client/plugin-sdk';
import { compileConfigSchema } from '@integration-client/plugin-sdk';
import { createFakeContext, type FakeContext } from '@integration-client/plugin-sdk/testing';
import type { Engine } from './connection-string.js';
import plugin, { type SqlConfig } from './index.js';

export const PG_ADMIN = process.env.IC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_ADMIN = process.env.IC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

const schema = compileConfigSchema(
  JSON.parse(readFileSync(new URL('../config.schema.json', import.meta.url), 'utf8')),
  'sql',
);

export interface TestDatabase {
  readonly engine: Exclude<Engine, 'mssql'>;
  readonly connectionString: string;
  /** Runs SQL as the administrator on this database; returns rows. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  drop(): Promise<void>;
}

const unique = () => `ic_sql_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;

export async function createDatabase(engine: TestDatabase['engine']): Promise<TestDatabase> {
  if (engine === 'sqlite') {
    const dir = await promisify(mkdtemp)(join(tmpdir(), 'ic-sql-'));
    const file = join(dir, 'sessions.db');
    const { default: Database } = await import('better-sqlite3');
    return {
      engine,
      connectionString: `sqlite:${file}`,
      sql(text, params = []) {
        const db = new Database(file);
        try {
          const s = db.prepare(text);
          return Promise.resolve(s.reader ? (s.all(...params) as Record<string, unknown>[]) : (s.run(...params), []));
        } finally {
          db.close();
        }
      },
      drop: () => Promise.resolve(),
    };
  }
  const name = unique();
  if (engine === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(PG_ADMIN);
    url.pathname = `/${name}`;
    const pool = new pg.Pool({ connectionString: url.href, max: 2 });
    pool.on('error', () => undefined); // an idle client the drop's FORCE ends is no failure of the test
    return {
      engine,
      connectionString: url.href,
      sql: async (text, params) => (await pool.query(text, params)).rows as Record<string, unknown>[],
      async drop() {
        await pool.end();
        const a = new pg.Client({ connectionString: PG_ADMIN });
        await a.connect();
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await a.end();
      },
    };
  }
  const url = new URL(MYSQL_ADMIN);
  const admin = await mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: url.username || 'root',
  });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.changeUser({ database: name });
  url.pathname = `/${name}`;
  return {
    engine,
    connectionString: url.href,
    sql: async (text, params) => {
      const [rows] = await admin.query(text, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.end();
    },
  };
}

/** A destination made the way the host makes one: config validated against the schema (defaults applied). */
export async function makeDestination(
  config: Record<string, unknown>,
): Promise<{ dest: Destination; ctx: FakeContext<SqlConfig> }> {
  const ctx = createFakeContext({ config: schema.validate<SqlConfig>(config, 'test destination') });
  return { dest: await plugin.create(ctx), ctx };
}

/** Delivers one item to its handler. */
export function deliver(
  dest: Destination,
  item: Item,
  signal: globalThis.AbortSignal = new AbortController().signal,
): Promise<Ack> {
  const handler = dest.handlers[item.operation] as (i: Item, o: { signal: AbortSignal }) => Promise<Ack>;
  return handler(item, { signal });
}

export const sessionItem = (session: Session): Item => ({
  operation: 'session-data',
  site: { host: session.supportSiteHost },
  lsid: session.lsid,
  session,
  xml: '<session_list/>',
});

/** Row counts of every table. */
export async function counts(db: TestDatabase): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of [
    'session',
    'session_event',
    'session_event_data',
    'system_information',
    'representative',
    'customer',
    'team',
    'custom_attribute',
    'session_extra',
  ]) {
    const [r] = await db.sql(`SELECT COUNT(*) AS n FROM ${t}`);
    out[t] = Number(r?.n);
  }
  return out;
}

/** Column names of a table, in order. */
export async function columnsOf(db: TestDatabase, table: string): Promise<string[]> {
  if (db.engine === 'sqlite') return (await db.sql(`PRAGMA table_info(${table})`)).map((r) => String(r.name));
  const rows = await db.sql(
    db.engine === 'postgres'
      ? `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
      : `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => String(r.name ?? r.NAME));
}

/**
 * A TCP proxy in front of a database server, to make the database "go away": `cutAfter(n)` drops every
 * connection once `n` more bytes have gone to the server and refuses new ones until `restore()`.
 */
export class CuttableProxy {
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  #budget = Infinity;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(port = 0): Promise<this> {
    this.#budget = Infinity;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => undefined).on('close', () => this.#sockets.delete(s));
      }
      client.on('data', (chunk: Buffer) => {
        this.#budget -= chunk.length;
        if (this.#budget <= 0) return this.cut();
        upstream.write(chunk);
      });
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    this.port = (server.address() as net.AddressInfo).port;
    this.#server = server;
    return this;
  }

  /** Drops everything after `bytes` more bytes towards the server. */
  cutAfter(bytes: number): void {
    this.#budget = bytes;
  }

  cut(): void {
    this.#server?.close();
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
  }

  /** Accepts connections again on the same port. */
  restore(): Promise<this> {
    return this.start(this.port);
  }
}
