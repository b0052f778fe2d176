/**
 * PostgreSQL through pg. Rows go in with one `COPY … FROM STDIN` per table and batch (pg-copy-streams, ADR 007),
 * inside the batch's transaction; ids for parent rows are taken from the table's identity sequence first, so
 * children can point at them in the same round of statements.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { pgTransaction } from '@integration-client/plugin-sdk';
import { from as copyFrom } from 'pg-copy-streams';
import { DIALECTS } from '../dialects.js';
import type { Driver, ResultRow, Tx } from '../driver.js';
import type { Row, Value } from '../rows.js';
import { insertColumns, type TableName } from '../schema.js';
import { serialized } from './common.js';

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

export function openPostgres(connectionString: string): Driver {
  const pool = new pg.Pool({ connectionString, max: 2, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined); // an idle client lost its server: the next checkout gets a new one
  const sequences = new Map<TableName, string>();
  const dialect = DIALECTS.postgres;

  const makeTx = (client: pg.PoolClient): Tx => {
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
    transaction: serialized(<T>(fn: (t: Tx) => Promise<T>) =>
      pgTransaction<pg.PoolClient, T>(pool, (client) => fn(makeTx(client))),
    ),
    async tableNames() {
      const r = await pool.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`,
      );
      return new Set(r.rows.map((x) => x.name.toLowerCase()));
    },
    close: () => pool.end(),
  };
}
