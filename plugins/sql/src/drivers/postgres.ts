/**
 * PostgreSQL through pg. Rows go in with one `COPY … FROM STDIN` per table and batch (pg-copy-streams, ADR 007),
 * inside the batch's transaction; ids for parent rows are taken from the table's identity sequence first, so
 * children can point at them in the same round of statements.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as Pg from 'pg';
import { pgTransaction } from '@integration-client/plugin-sdk';
import type * as CopyStreams from 'pg-copy-streams';
import { DIALECTS } from '../dialects.js';
import type { Driver, ResultRow, Tx } from '../driver.js';
import type { Row, Value } from '../rows.js';
import { insertColumns, type TableName } from '../schema.js';
import { load } from './load.js';

/** COPY text format: `\N` for NULL; backslash, tab, newline and carriage return escaped. */
function copyField(v: Value): string {
  if (v === null || v === undefined) return '\\N';
  const s = String(v);
  return /[\\\t\n\r]/.test(s)
    ? s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : s;
}

/** The COPY statement for `table`, with the id column first when ids are supplied. */
export function copyStatement(table: TableName, withIds: boolean): string {
  const q = DIALECTS.postgres.q;
  const names = [...(withIds ? ['id'] : []), ...insertColumns(table).map((c) => c.name)];
  return `COPY ${q(table)} (${names.map(q).join(', ')}) FROM STDIN`;
}

/** Rows as COPY text, in chunks of about 1,000 lines. */
function* copyText(rows: readonly Row[], ids: readonly number[]): Generator<string> {
  for (let at = 0; at < rows.length; at += 1000) {
    let chunk = '';
    for (let r = at; r < Math.min(rows.length, at + 1000); r++) {
      const fields = rows[r]!.map(copyField).join('\t');
      chunk += ids.length ? `${ids[r]}\t${fields}\n` : `${fields}\n`;
    }
    yield chunk;
  }
}

/**
 * Transactions at once, each on its own connection: the server writes one batch while the next is sent. Two, not
 * one: with one, the e2e benchmark kept ~1.6 of 2 cores busy (the server and this worker took turns) and ran ~10 %
 * slower (ADR 011, amendment of stop 22). More than two were not measured.
 */
const WRITERS = 2;

export function openPostgres(connectionString: string): Driver {
  const pg = load<typeof Pg>('pg');
  const copyFrom = load<typeof CopyStreams>('pg-copy-streams').from;
  const pool = new pg.Pool({ connectionString, max: WRITERS, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined); // an idle client lost its server: the next checkout gets a new one
  // Open connections, so close() resolves once they are closed (pool.end() resolves when the pool has let go of them,
  // before their sockets close; a server that ends one meanwhile would find no listener on it).
  const clients = new Set<Pg.PoolClient>();
  pool.on('connect', (client) => {
    clients.add(client);
    client.on('error', () => undefined); // errors reach the query (or pgTransaction's listener); none goes uncaught
    client.once('end', () => clients.delete(client));
  });
  const sequences = new Map<TableName, string>();
  const dialect = DIALECTS.postgres;

  const makeTx = (client: Pg.PoolClient): Tx => {
    const query = async (sql: string, params: readonly Value[] = []) =>
      (await client.query(sql, params as Value[])).rows as ResultRow[];
    const nextIds = async (table: TableName, n: number): Promise<number[]> => {
      let seq = sequences.get(table);
      if (!seq) {
        const [r] = await query(`SELECT pg_get_serial_sequence($1, 'id') AS seq`, [dialect.q(table)]);
        seq = String(r?.seq);
        sequences.set(table, seq);
      }
      const rows = await query(`SELECT nextval($1::regclass) AS id FROM generate_series(1, $2)`, [seq, n]);
      return rows.map((r) => Number(r.id));
    };
    return {
      query,
      async insert(table, rows, wantIds) {
        if (!rows.length) return [];
        const ids = wantIds ? await nextIds(table, rows.length) : [];
        await pipeline(Readable.from(copyText(rows, ids)), client.query(copyFrom(copyStatement(table, wantIds))));
        return ids;
      },
      async lockForMigration() {
        await query(`SELECT pg_advisory_xact_lock(hashtext('integration-client.sql.migrate'))`);
      },
    };
  };

  return {
    engine: 'postgres',
    dialect,
    writers: WRITERS,
    transaction: <T>(fn: (t: Tx) => Promise<T>) =>
      pgTransaction<Pg.PoolClient, T>(pool, (client) => fn(makeTx(client))),
    async tableNames() {
      const r = await pool.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`,
      );
      return new Set(r.rows.map((x) => x.name.toLowerCase()));
    },
    async close() {
      const ended = [...clients].map((c) => once(c, 'end'));
      await pool.end();
      // Bounded: a socket that never reports its end does not hold up the host's shutdown.
      await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 5_000).unref())]);
    },
  };
}
