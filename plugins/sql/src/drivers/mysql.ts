/**
 * MariaDB/MySQL through mysql2. Rows go in as multi-row INSERTs in chunks well under max_allowed_packet. With
 * innodb_autoinc_lock_mode 0 or 1 (MariaDB's and MySQL 5.7's default) a multi-row INSERT gets consecutive ids
 * (step auto_increment_increment) starting at insertId; with mode 2 rows that need ids go in one at a time.
 */
import type * as Mysql from 'mysql2/promise';
import type { ParsedConnection } from '../connection-string.js';
import { DIALECTS } from '../dialects.js';
import type { Driver, ResultRow, Tx } from '../driver.js';
import type { Row, Value } from '../rows.js';
import { insertColumns, type TableName } from '../schema.js';
import { timeColumns } from './common.js';
import { load } from './load.js';

/** ISO-8601 UTC → `YYYY-MM-DD HH:MM:SS[.fff]` for DATETIME(3), which holds no zone. */
export const mysqlTime = (iso: string) => iso.replace('T', ' ').replace(/Z$/, '');

const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Transactions at once, each on its own connection, as on PostgreSQL: the `sql` benchmark wrote 1,000–1,140
 * sessions/s with one and 1,500–1,700 with two (ADR 011, amendment of stop 22). Ids stay consecutive per multi-row
 * INSERT with two writers: lock modes 0 and 1 allocate a statement's ids at once; mode 2 inserts one row at a time.
 */
const WRITERS = 2;

export function openMysql(conn: ParsedConnection): Driver {
  const mysql = load<typeof Mysql>('mysql2/promise');
  const s = conn.server!;
  const ssl = s.options.ssl ?? s.options.sslmode;
  const pool = mysql.createPool({
    host: s.host,
    port: s.port,
    user: s.user,
    password: s.password,
    database: s.database,
    charset: 'utf8mb4',
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    connectionLimit: WRITERS,
    connectTimeout: 10_000,
    ssl: ssl && !['false', 'disable', '0'].includes(ssl) ? { rejectUnauthorized: ssl !== 'no-verify' } : undefined,
  });
  // A pooled connection the server drops while idle must not become an uncaught 'error'.
  pool.pool.on('connection', (c) => {
    c.on('error', () => undefined);
    c.query("SET time_zone = '+00:00'");
  });
  const dialect = DIALECTS.mysql;
  let idMode: Promise<{ consecutive: boolean; step: number }> | undefined;

  const makeTx = (c: Mysql.PoolConnection, held: { lock: boolean }): Tx => {
    const query = async (sql: string, params: readonly Value[] = []) => {
      const [rows] = await c.query(sql, params as Value[]);
      return Array.isArray(rows) ? (rows as ResultRow[]) : [];
    };
    const insertChunk = async (prefix: string, rows: Value[][]) => {
      const [r] = await c.query(`${prefix} VALUES ?`, [rows]);
      return (r as Mysql.ResultSetHeader).insertId;
    };
    return {
      query,
      async insert(table: TableName, rows: readonly Row[], wantIds: boolean) {
        if (!rows.length) return [];
        const cols = insertColumns(table);
        const times = timeColumns(table);
        const prefix = `INSERT INTO ${dialect.q(table)} (${cols.map((x) => dialect.q(x.name)).join(', ')})`;
        idMode ??= query(`SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step`).then(
          ([r]) => ({ consecutive: Number(r?.mode) < 2, step: Number(r?.step) || 1 }),
        );
        const { consecutive, step } = await idMode;
        const ids: number[] = [];
        let chunk: Value[][] = [];
        let bytes = 0;
        const flush = async () => {
          if (!chunk.length) return;
          const first = await insertChunk(prefix, chunk);
          if (wantIds) for (let i = 0; i < chunk.length; i++) ids.push(first + i * step);
          chunk = [];
          bytes = 0;
        };
        for (const row of rows) {
          const values = times.length ? row.slice() : row;
          for (const i of times) if (typeof values[i] === 'string') values[i] = mysqlTime(values[i]);
          for (const v of values) bytes += typeof v === 'string' ? v.length * 3 + 4 : 12;
          chunk.push(values);
          if (bytes > CHUNK_BYTES || (wantIds && !consecutive)) await flush();
        }
        await flush();
        return ids;
      },
      async lockForMigration() {
        const [r] = await query(`SELECT GET_LOCK('integration-client.sql.migrate', 60) AS got`);
        if (Number(r?.got) !== 1) throw new Error('timed out waiting for another process to finish the schema upgrade');
        held.lock = true;
      },
    };
  };

  return {
    engine: 'mysql',
    dialect,
    writers: WRITERS,
    async transaction<T>(fn: (t: Tx) => Promise<T>) {
      const c = await pool.getConnection();
      const held = { lock: false };
      let broken = false;
      try {
        await c.beginTransaction();
        const result = await fn(makeTx(c, held));
        await c.commit();
        return result;
      } catch (err) {
        await c.rollback().catch(() => (broken = true));
        throw err;
      } finally {
        if (held.lock)
          await c.query(`SELECT RELEASE_LOCK('integration-client.sql.migrate')`).catch(() => (broken = true));
        if (broken) c.destroy();
        else c.release();
      }
    },
    async tableNames() {
      const [rows] = await pool.query(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()`,
      );
      return new Set((rows as { name: string }[]).map((x) => x.name.toLowerCase()));
    },
    close: () => pool.end(),
  };
}
