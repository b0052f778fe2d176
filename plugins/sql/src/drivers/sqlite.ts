/** SQLite through better-sqlite3 (synchronous; one connection, WAL, synchronous=FULL so a commit is durable). */
import type Database from 'better-sqlite3';
import { DIALECTS } from '../dialects.js';
import type { Driver, ResultRow, Tx } from '../driver.js';
import type { Row, Value } from '../rows.js';
import { insertColumns, type TableName } from '../schema.js';
import { serialized, timeColumns } from './common.js';
import { load } from './load.js';

/** ISO-8601 UTC → `YYYY-MM-DD HH:MM:SS[.fff]`, the form SQLite's date functions read. */
export const sqliteTime = (iso: string) => iso.replace('T', ' ').replace(/Z$/, '');

export function openSqlite(file: string, options: { busyTimeoutMs?: number } = {}): Driver {
  const Sqlite = load<typeof Database>('better-sqlite3');
  const db = new Sqlite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string) => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const dialect = DIALECTS.sqlite;
  const tx: Tx = {
    query(sql, params = []) {
      const s = prepare(sql);
      if (s.reader) return Promise.resolve(s.all(...params) as ResultRow[]);
      s.run(...params);
      return Promise.resolve([]);
    },
    insert(table: TableName, rows: readonly Row[], wantIds: boolean) {
      const cols = insertColumns(table);
      const times = timeColumns(table);
      const s = prepare(
        `INSERT INTO ${dialect.q(table)} (${cols.map((c) => dialect.q(c.name)).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
      );
      const ids: number[] = [];
      for (const row of rows) {
        let values: Value[] = row;
        if (times.length) {
          values = row.slice();
          for (const i of times) if (typeof values[i] === 'string') values[i] = sqliteTime(values[i]);
        }
        const r = s.run(...values);
        if (wantIds) ids.push(Number(r.lastInsertRowid));
      }
      return Promise.resolve(ids);
    },
    lockForMigration: () => Promise.resolve(), // BEGIN IMMEDIATE already holds the write lock
  };
  return {
    engine: 'sqlite',
    dialect,
    writers: 1,
    transaction: serialized(async <T>(fn: (t: Tx) => Promise<T>) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(tx);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    }),
    tableNames: () =>
      Promise.resolve(
        new Set(
          (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((r) =>
            r.name.toLowerCase(),
          ),
        ),
      ),
    close: () => Promise.resolve(void db.close()),
  };
}
