/**
 * SQL Server through mssql (tedious). NOT YET RUN AGAINST A LIVE SQL SERVER: no server can run on the machines
 * this project is built on. Its statements are parsed by a T-SQL grammar in tests and the store above it is the
 * one tested live on the other engines; see the package README.
 */
import type * as Mssql from 'mssql';
import { mssqlConnectionConfig, type ParsedConnection } from '@integration-client/plugin-sdk';
import { DIALECTS } from '../dialects.js';
import type { Driver, ResultRow, Tx } from '../driver.js';
import type { Value } from '../rows.js';
import { insertColumns, type TableName } from '../schema.js';
import { serialized, timeColumns } from './common.js';
import { load } from './load.js';

/** SQL Server takes at most 2100 parameters per request and 1000 rows per VALUES list. */
const MAX_PARAMS = 2000;
const MAX_ROWS = 1000;

const q = DIALECTS.mssql.q;

/**
 * One request's SQL for `count` rows of `table`: with ids, one INSERT + `SELECT SCOPE_IDENTITY()` per row (its
 * result sets give the ids in row order); without, one multi-row INSERT.
 */
export function insertBatchSql(table: TableName, count: number, wantIds: boolean): string {
  const cols = insertColumns(table);
  const head = `INSERT INTO ${q(table)} (${cols.map((c) => q(c.name)).join(', ')}) VALUES `;
  const tuple = (r: number) => `(${cols.map((_, c) => `@p${r * cols.length + c}`).join(', ')})`;
  const rows = Array.from({ length: count }, (_, r) => tuple(r));
  if (!wantIds) return `${head}${rows.join(', ')}`;
  return rows.map((t) => `${head}${t}; SELECT CAST(SCOPE_IDENTITY() AS BIGINT) AS ${q('id')}`).join('; ');
}

/** Rows per request for `table`. */
export function rowsPerRequest(table: TableName): number {
  return Math.max(1, Math.min(MAX_ROWS, Math.floor(MAX_PARAMS / insertColumns(table).length)));
}

export const MIGRATION_LOCK_SQL =
  "EXEC sp_getapplock @Resource = N'integration-client.sql.migrate', @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 60000";

export function mssqlConfig(conn: ParsedConnection): Mssql.config {
  return mssqlConnectionConfig(conn);
}

export function openMssql(conn: ParsedConnection): Driver {
  const sql = load<typeof Mssql>('mssql');
  const pool = new sql.ConnectionPool(mssqlConfig(conn));
  const connecting = pool.connect();
  connecting.catch(() => undefined);
  const dialect = DIALECTS.mssql;

  const request = (t: Mssql.Transaction, params: readonly Value[]) => {
    const r = new sql.Request(t);
    params.forEach((v, i) => r.input(`p${i}`, v));
    return r;
  };

  const makeTx = (t: Mssql.Transaction): Tx => ({
    async query(text, params = []) {
      const r = await request(t, params).query(text);
      return (r.recordset ?? []) as ResultRow[];
    },
    async insert(table, rows, wantIds) {
      const times = timeColumns(table);
      const per = wantIds
        ? Math.max(1, Math.floor(MAX_PARAMS / insertColumns(table).length / 2))
        : rowsPerRequest(table);
      const ids: number[] = [];
      for (let at = 0; at < rows.length; at += per) {
        const part = rows.slice(at, at + per);
        const params = part.flatMap((row) =>
          times.length ? row.map((v, i) => (times.includes(i) && typeof v === 'string' ? new Date(v) : v)) : row,
        ) as Value[];
        const r = await request(t, params).query(insertBatchSql(table, part.length, wantIds));
        if (wantIds)
          for (const set of r.recordsets as Mssql.IRecordSet<{ id: string | number }>[]) ids.push(Number(set[0]!.id));
      }
      return ids;
    },
    async lockForMigration() {
      await request(t, []).query(MIGRATION_LOCK_SQL);
    },
  });

  return {
    engine: 'mssql',
    dialect,
    writers: 1,
    transaction: serialized(async <T>(fn: (t: Tx) => Promise<T>) => {
      await connecting;
      const t = new sql.Transaction(pool);
      await t.begin();
      try {
        const result = await fn(makeTx(t));
        await t.commit();
        return result;
      } catch (err) {
        await t.rollback().catch(() => undefined);
        throw err;
      }
    }),
    async tableNames() {
      await connecting;
      const r = await pool
        .request()
        .query<{ name: string }>(
          `SELECT TABLE_NAME AS name FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = SCHEMA_NAME()`,
        );
      return new Set(r.recordset.map((x) => x.name.toLowerCase()));
    },
    close: () => pool.close(),
  };
}
