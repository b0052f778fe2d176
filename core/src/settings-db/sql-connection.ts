/**
 * The few things the settings database needs from an engine: run a statement, select rows, run a transaction.
 * SQL is written once with `?` markers and double-quoted identifiers; each connection turns the markers into its
 * engine's (`$1` for PostgreSQL, `@p0` for SQL Server). The drivers for PostgreSQL and SQL Server are imported
 * only when such a settings database is opened, so the SQLite default costs nothing extra at start-up.
 *
 * SQL Server: NOT RUN AGAINST A LIVE SERVER (none can run here); its statements are parsed by a T-SQL grammar
 * in tests and the repository above is the one tested live on SQLite and PostgreSQL.
 */
import { statfsSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import type { PoolClient } from 'pg';
import { dirname } from 'node:path';
import {
  ConfigError,
  IcError,
  mssqlConnectionConfig,
  parseConnectionString,
  pgTransaction,
  type ParsedConnection,
  makeDirectory,
} from '@integration-client/plugin-sdk';

export type SettingsDialect = 'sqlite' | 'postgres' | 'mssql';
export type Param = string | number | null;
export type SqlRow = Record<string, unknown>;

export interface SqlConnection {
  readonly dialect: SettingsDialect;
  /** Where the database is, without credentials (`postgres://host:port/db`, `sqlite:/path`). */
  readonly location: string;
  /** The database's identity, to compare two connections (ParsedConnection.key). */
  readonly key: string;
  all<T = SqlRow>(sql: string, params?: readonly Param[]): Promise<T[]>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
  /** Runs `fn` in a transaction (commit when it resolves, roll back when it throws). Statements of other callers wait. */
  transaction<T>(fn: (tx: SqlConnection) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Opens a settings database by connection string: `sqlite:<path>`, `postgres://…`, `mssql://…` or `Server=…;…`. */
export async function openSqlConnection(connection: string): Promise<SqlConnection> {
  const parsed = parseConnectionString(connection);
  switch (parsed.engine) {
    case 'sqlite':
      return openSqlite(parsed.file!);
    case 'postgres':
      return openPostgres(connection, parsed);
    case 'mssql':
      return openMssql(parsed);
    default:
      throw new ConfigError(
        `a ${parsed.engine} database cannot hold the settings; use SQLite, PostgreSQL or SQL Server`,
      );
  }
}

/**
 * Lets transactions exclude other statements on the same connection: statements issued outside the transaction
 * wait until it ends; the transaction's own statements (through its `tx`) go straight through.
 */
class Gate {
  #tail: Promise<unknown> = Promise.resolve();
  #open = false;
  get busy(): boolean {
    return this.#open;
  }
  /** Waits for the running transaction, if any. */
  idle(): Promise<unknown> {
    return this.#tail;
  }
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(async () => {
      this.#open = true;
      try {
        return await fn();
      } finally {
        this.#open = false;
      }
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

/** Builds a connection from one statement runner and a way to run a transaction with another runner. */
function connection(
  dialect: SettingsDialect,
  { location, key }: Pick<ParsedConnection, 'location' | 'key'>,
  exec: Runner,
  begin: <T>(fn: (r: Runner) => Promise<T>) => Promise<T>,
  close: () => Promise<void>,
  gate = new Gate(),
): SqlConnection {
  const over = (r: Runner): SqlConnection => ({
    dialect,
    location,
    key,
    all: async <T>(sql: string, params: readonly Param[] = []) => (await r(sql, params)).rows as T[],
    run: async (sql, params = []) => (await r(sql, params)).changes,
    transaction: (fn) => fn(over(r)), // nested: same transaction
    close,
  });
  const outside: Runner = async (sql, params) => {
    if (gate.busy) await gate.idle();
    return exec(sql, params);
  };
  const conn = over(outside);
  return { ...conn, transaction: (fn) => gate.exclusive(() => begin((r) => fn(over(r)))) };
}

type Runner = (sql: string, params: readonly Param[]) => Promise<{ rows: SqlRow[]; changes: number }>;

// ---- SQLite (better-sqlite3, synchronous underneath) ----

/**
 * SQLite waits for a lock synchronously (busy_timeout), so two connections of one process to one file must not
 * meet inside a transaction: the one waiting would block the thread the other needs to finish. They share a gate.
 */
const sqliteGates = new Map<string, Gate>();
function gateOf(file: string): Gate {
  let g = sqliteGates.get(file);
  if (!g) sqliteGates.set(file, (g = new Gate()));
  return g;
}

/**
 * A SQLite settings file that cannot be opened or written, as a coded error that says what to do: its file system
 * full (SQLite says `SQLITE_FULL`, or only `disk I/O error` when it cannot even make its WAL index), read-only, or
 * the file or folder not this user's to write. Anything else is returned as it was.
 */
export function sqliteTrouble(file: string, err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|PERM)/.test(code)) return err;
  let free: number | undefined;
  try {
    const fs = statfsSync(dirname(file));
    free = fs.bavail * fs.bsize;
  } catch {
    // the folder itself is not there: the message below says so
  }
  const why =
    code.startsWith('SQLITE_FULL') || (code.startsWith('SQLITE_IOERR') && free !== undefined && free < 1 << 20)
      ? `the file system of ${dirname(file)} is full (${free ?? 0} bytes free): free some space there`
      : code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_CANTOPEN')
        ? `check that ${dirname(file)} exists and that this user may write it and ${file} (a read-only file system?)`
        : `check the disk of ${dirname(file)}`;
  return new IcError(
    'IC_ERR_SETTINGS_DB_UNAVAILABLE',
    `the settings database sqlite:${file} cannot be opened or written (${code}: ${(err as Error).message}); ${why}`,
    { cause: err, details: { sqlite: code } },
  );
}

async function openSqlite(file: string): Promise<SqlConnection> {
  const { default: Database } = await import('better-sqlite3');
  makeDirectory(dirname(file), 0o700);
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a killed process (it is in the WAL); after a power loss the last ledger or
    // cursor updates may be lost, which only makes the next run re-read and re-deliver, never lose data.
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 10000');
  } catch (err) {
    try {
      db?.close();
    } catch {
      // closing what could not be opened: the error that matters is the one thrown
    }
    throw sqliteTrouble(file, err);
  }
  const statements = new Map<string, BetterSqlite3.Statement<Param[]>>();
  const exec: Runner = (sql, params) => {
    let s = statements.get(sql);
    if (!s) {
      if (statements.size > 500) statements.clear();
      statements.set(sql, (s = db.prepare(sql)));
    }
    const args = params as Param[];
    if (s.reader) return Promise.resolve({ rows: s.all(...args) as SqlRow[], changes: 0 });
    return Promise.resolve({ rows: [], changes: s.run(...args).changes });
  };
  return connection(
    'sqlite',
    { location: `sqlite:${file}`, key: `sqlite:${file}` },
    exec,
    async (fn) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(exec);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    },
    () => Promise.resolve(void db.close()),
    gateOf(file),
  );
}

// ---- PostgreSQL (pg) ----

/** `?` markers → `$1, $2, …` (the settings SQL has no `?` inside literals). */
export const postgresMarkers = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

async function openPostgres(connectionString: string, parsed: ParsedConnection): Promise<SqlConnection> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString, max: 3, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined); // an idle client lost its server: the next checkout gets a new one
  const runner =
    (q: { query: InstanceType<typeof pg.Pool>['query'] }): Runner =>
    async (sql, params) => {
      const r = await q.query(postgresMarkers(sql), params as Param[]);
      return { rows: r.rows as SqlRow[], changes: r.rowCount ?? 0 };
    };
  // Fail here, with a clear message, when the server cannot be reached or the database does not exist.
  await pool.query('SELECT 1').catch(async (err: unknown) => {
    await pool.end();
    throw unreachable(parsed, err);
  });
  return connection(
    'postgres',
    parsed,
    runner(pool),
    <T>(fn: (r: Runner) => Promise<T>) => pgTransaction<PoolClient, T>(pool, (client) => fn(runner(client))),
    () => pool.end(),
  );
}

// ---- SQL Server (mssql / tedious) ----

/** `?` markers → `@p0, @p1, …`. */
export const mssqlMarkers = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `@p${n++}`);
};

async function openMssql(parsed: ParsedConnection): Promise<SqlConnection> {
  const { default: mssql } = await import('mssql');
  const pool = new mssql.ConnectionPool(mssqlConnectionConfig(parsed));
  await pool.connect().catch(async (err: unknown) => {
    await pool.close().catch(() => undefined);
    throw unreachable(parsed, err);
  });
  const runner =
    (on: () => InstanceType<typeof mssql.Request>): Runner =>
    async (sql, params) => {
      const request = on();
      params.forEach((v, i) => request.input(`p${i}`, v));
      const r = await request.query(mssqlMarkers(sql));
      return { rows: (r.recordset ?? []) as SqlRow[], changes: r.rowsAffected.reduce((a, b) => a + b, 0) };
    };
  return connection(
    'mssql',
    parsed,
    runner(() => pool.request()),
    async (fn) => {
      const t = new mssql.Transaction(pool);
      await t.begin();
      try {
        const result = await fn(runner(() => new mssql.Request(t)));
        await t.commit();
        return result;
      } catch (err) {
        await t.rollback().catch(() => undefined);
        throw err;
      }
    },
    () => pool.close(),
  );
}

function unreachable(parsed: ParsedConnection, err: unknown): ConfigError {
  const why = err instanceof Error ? err.message : String(err);
  return new ConfigError(
    `the settings database ${parsed.location} cannot be opened (${why}); check the server, the database name and the credentials`,
  );
}
