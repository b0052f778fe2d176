/**
 * PostgreSQL through pg. Rows go in with one `INSERT … SELECT * FROM unnest($1::type[], …)` per table and batch
 * (one parameter per column, whatever the row count); ids for parent rows are taken from the table's identity
 * sequence first, so children can point at them in the same round of statements.
 */
import pg from 'pg';
import { DIALECTS } from '../dialects.js';
import type { Driver, ResultRow, Tx } from '../driver.js';
import type { Value } from '../rows.js';
import { insertColumns, type ColumnKind, type TableName } from '../schema.js';
import { serialized } from './common.js';

const ARRAY_TYPES: Record<ColumnKind, string> = {
  id: 'bigint[]',
  ref: 'bigint[]',
  bigint: 'bigint[]',
  int: 'integer[]',
  flag: 'smallint[]',
  key: 'text[]',
  short: 'text[]',
  text: 'text[]',
  time: 'timestamptz[]',
};

/** The INSERT for `table`, with the id column first when ids are supplied. */
export function unnestInsert(table: TableName, withIds: boolean): string {
  const q = DIALECTS.postgres.q;
  const cols = insertColumns(table);
  const names = [...(withIds ? ['id'] : []), ...cols.map((c) => c.name)];
  const kinds: ColumnKind[] = [...(withIds ? (['id'] as const) : []), ...cols.map((c) => c.kind)];
  return (
    `INSERT INTO ${q(table)} (${names.map(q).join(', ')}) ` +
    `SELECT * FROM unnest(${kinds.map((k, i) => `$${i + 1}::${ARRAY_TYPES[k]}`).join(', ')})`
  );
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
        const width = insertColumns(table).length;
        const columns: Value[][] = Array.from({ length: width }, () => new Array<Value>(rows.length));
        for (let r = 0; r < rows.length; r++) {
          const row = rows[r]!;
          for (let c = 0; c < width; c++) columns[c]![r] = row[c] ?? null;
        }
        await client.query(unnestInsert(table, wantIds), wantIds ? [ids, ...columns] : columns);
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
    transaction: serialized(async <T>(fn: (t: Tx) => Promise<T>) => {
      const client = await pool.connect();
      let broken: unknown;
      // A checked-out client that loses its server emits 'error' between queries; keep it from going uncaught.
      const lost = (e: unknown) => (broken = e);
      client.on('error', lost);
      try {
        await client.query('BEGIN');
        const result = await fn(makeTx(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
        throw err;
      } finally {
        client.off('error', lost);
        client.release(broken as Error | undefined);
      }
    }),
    async tableNames() {
      const r = await pool.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`,
      );
      return new Set(r.rows.map((x) => x.name.toLowerCase()));
    },
    close: () => pool.end(),
  };
}
