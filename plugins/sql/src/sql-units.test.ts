/**
 * Engine-free parts: connection strings, the SQL Server dialect (every statement parsed by a T-SQL grammar),
 * the mssql error path, group commit, and which client packages are loaded when.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DESTINATION_WIDE_CODES, DestinationError, isIcError, type Session } from '@integration-client/plugin-sdk';
import { sampleSession } from '@integration-client/plugin-sdk/testing';
import pkg from 'node-sql-parser';
import { describe, expect, it } from 'vitest';
import { parseConnectionString, sameDatabase } from './connection-string.js';
import { DIALECTS, MIGRATIONS, migrationsTableDdl } from './dialects.js';
import type { Driver, Tx } from './driver.js';
import { tablesNotReady, toDestinationError } from './db-errors.js';
import { insertBatchSql, MIGRATION_LOCK_SQL, mssqlConfig, openMssql } from './drivers/mssql.js';
import { openDriver } from './drivers/index.js';
import { GroupCommit } from './group-commit.js';
import { hhmmss, sessionRows } from './rows.js';
import { sampleSessions } from './sample-sessions.js';
import { TABLES } from './schema.js';
import { SessionStore } from './session-store.js';
import { deliver, makeDestination, sessionItem } from './test-helpers.js';

describe('connection strings', () => {
  it('picks the engine from the form and keeps credentials out of the location', () => {
    const ado = parseConnectionString('Server=db.corp,1444;Database=Archive;User Id=ic;Password=s3cret;Encrypt=true');
    expect(ado).toMatchObject({
      engine: 'mssql',
      location: 'mssql://db.corp:1444/Archive',
      key: 'mssql://db.corp:1444/archive',
    });
    expect(ado.server).toMatchObject({
      host: 'db.corp',
      port: 1444,
      user: 'ic',
      password: 's3cret',
      options: { encrypt: 'true' },
    });
    expect(parseConnectionString('Data Source=SQL01\\ARCHIVE;Initial Catalog=ic;User ID=u;Pwd=p').location).toBe(
      'mssql://sql01\\archive:1433/ic',
    );
    expect(parseConnectionString('mssql://ic:p%40ss@db:1433/archive').server).toMatchObject({
      password: 'p@ss',
      database: 'archive',
    });
    // Messages show the host as written; the key (to compare) takes every loopback name as one.
    expect(parseConnectionString('postgres://ic:pw@localhost/Archive')).toMatchObject({
      location: 'postgres://localhost:5432/Archive',
      key: 'postgres://loopback:5432/archive',
    });
    expect(parseConnectionString('postgresql://127.0.0.1:5433/a')).toMatchObject({
      location: 'postgres://127.0.0.1:5433/a',
      key: 'postgres://loopback:5433/a',
    });
    expect(parseConnectionString('postgres://[::1]/a').location).toBe('postgres://[::1]:5432/a');
    expect(sameDatabase('postgres://u:x@[::1]/A', 'postgresql://127.0.0.1:5432/a?sslmode=disable')).toBe(true);
    expect(sameDatabase('postgres://127.0.0.1/a', 'postgres://127.0.0.1:5433/a')).toBe(false);
    expect(parseConnectionString('mariadb://root@db/ic').location).toBe('mysql://db:3306/ic');
    expect(parseConnectionString('mysql://root@db:3307/ic').engine).toBe('mysql');
    expect(parseConnectionString('sqlite:data/s.db', '/srv').location).toBe('sqlite:/srv/data/s.db');
    expect(parseConnectionString('sqlite:///var/s.db').file).toBe('/var/s.db');
    for (const s of [ado.location, parseConnectionString('mysql://root:pw@db/ic').location])
      expect(s).not.toMatch(/s3cret|pw/);
  });

  it('refuses unknown forms with IC_ERR_CONFIG_INVALID and never echoes the string', () => {
    for (const bad of [
      '',
      'oracle://u:topsecret@h/db',
      'Server=h;User Id=u;Password=topsecret',
      'postgres://u:topsecret@h',
      'just text topsecret',
      'sqlite:',
    ]) {
      let err: unknown;
      try {
        parseConnectionString(bad);
      } catch (e) {
        err = e;
      }
      expect(isIcError(err) && err.code).toBe('IC_ERR_CONFIG_INVALID');
      expect((err as Error).message).not.toContain('topsecret');
      expect((err as Error).message).toMatch(/use Server=/);
    }
  });

  it('tells when two connection strings name the same database, whatever the credentials', () => {
    expect(sameDatabase('postgres://a:1@localhost/ic', 'postgresql://b:2@127.0.0.1:5432/IC')).toBe(true);
    expect(sameDatabase('postgres://localhost/ic', 'postgres://localhost/ic2')).toBe(false);
    expect(sameDatabase('Server=db;Database=ic;User Id=a', 'mssql://b@db:1433/ic')).toBe(true);
    expect(sameDatabase('mysql://db/ic', 'postgres://db/ic')).toBe(false);
    expect(sameDatabase('sqlite:/a/../b/s.db', 'sqlite:/b/s.db')).toBe(true);
  });
});

describe('rows', () => {
  it("writes durations as the seed's HH:MM:SS", () => {
    expect([hhmmss(0), hhmmss(902), hhmmss(90_061), hhmmss(undefined)]).toEqual([
      '00:00:00',
      '00:15:02',
      '25:01:01',
      null,
    ]);
  });
});

// ---- SQL Server: no server here. The statements are parsed by node-sql-parser's T-SQL grammar. ----

const { Parser } = pkg;
const tsql = new Parser();
const FOREIGN_KEY = /, CONSTRAINT \[fk_\w+\] FOREIGN KEY \(\[\w+\]\) REFERENCES \[\w+\] \(\[id\]\)/g;

/**
 * Parses one T-SQL statement. The grammar (node-sql-parser 5.4, `transactsql`) has no rule for a FOREIGN KEY
 * table constraint, which is standard T-SQL; such constraints are matched against the exact T-SQL form instead
 * and removed before the rest of the statement is parsed.
 */
function parseTsql(statement: string): void {
  const fks = statement.match(FOREIGN_KEY) ?? [];
  const rest = statement.replace(FOREIGN_KEY, '');
  expect(rest).not.toMatch(/FOREIGN KEY|REFERENCES/);
  if (fks.length) expect(statement).toMatch(/^CREATE TABLE /);
  tsql.astify(rest, { database: 'transactsql' });
}

/** A Driver that records the SQL it is given instead of running it — a mock, because no SQL Server runs here. */
function recordingDriver(): { driver: Driver; statements: string[] } {
  const statements: string[] = [];
  let nextId = 1;
  const tx: Tx = {
    query(sql) {
      statements.push(sql);
      if (sql.startsWith('SELECT [id], [lsid] FROM [session]'))
        return Promise.resolve([{ id: 7, lsid: 'c69a8e10bea9428f816cfababe9815fe' }]);
      if (sql.startsWith('SELECT [id] FROM [session_event]'))
        return Promise.resolve([1, 2, 3, 4].map((id) => ({ id })));
      return Promise.resolve([]);
    },
    insert(table, rows, wantIds) {
      statements.push(insertBatchSql(table, rows.length, wantIds));
      return Promise.resolve(rows.map(() => nextId++));
    },
    lockForMigration() {
      statements.push(MIGRATION_LOCK_SQL);
      return Promise.resolve();
    },
  };
  const driver: Driver = {
    engine: 'mssql',
    dialect: DIALECTS.mssql,
    writers: 1,
    transaction: (fn) =>
      fn(tx).catch((e: unknown) =>
        String(e).includes('probe done') ? undefined : Promise.reject(e as Error),
      ) as never,
    tableNames: () => Promise.resolve(new Set<string>()),
    close: () => Promise.resolve(),
  };
  return { driver, statements };
}

describe('SQL Server dialect', () => {
  it('the grammar accepts valid T-SQL and rejects broken T-SQL (the check can fail)', () => {
    expect(() => parseTsql('SELECT [id] FROM [session] WHERE [lsid] = @p0')).not.toThrow();
    expect(() => parseTsql('CREATE TABLE [t] ([a] BIGIN NULL)')).toThrow();
    expect(() => parseTsql('DELETE [session] WHER [id] = 1')).toThrow();
    expect(() => parseTsql('INSERT INTO [session] ([lsid]) VALUES (@p0')).toThrow();
    expect(() => parseTsql('CREATE TABLE [t] ([a] BIGINT NULL, FOREIGN KEY ([a]) REFERENCES [s] ([id]))')).toThrow();
  });

  it('parses every DDL statement of every migration', () => {
    const ddl = [migrationsTableDdl(DIALECTS.mssql), ...MIGRATIONS.flatMap((m) => m.statements(DIALECTS.mssql))];
    expect(ddl.filter((s) => s.startsWith('CREATE TABLE'))).toHaveLength(TABLES.length);
    for (const s of ddl) parseTsql(s);
    expect(ddl.join('\n')).toMatch(/\[id\] BIGINT IDENTITY\(1,1\) NOT NULL PRIMARY KEY/);
    expect(ddl.join('\n')).toMatch(/CONSTRAINT \[uq_session_host_name_lsid\] UNIQUE \(\[host_name\], \[lsid\]\)/);
    expect(ddl.join('\n').match(FOREIGN_KEY)).toHaveLength(8);
  });

  it('parses every statement the store sends: migrate, replace a stored session, system information, probes', async () => {
    const { driver, statements } = recordingDriver();
    const store = new SessionStore(driver);
    await store.migrate();
    const rows = sessionRows(sampleSession(), true);
    expect(await store.writeSessions([rows, sessionRows(sampleSession({ lsid: 'other' }), true)])).toEqual([
      'replaced',
      'written',
    ]);
    await store.writeSystemInformation(rows);
    await store.probeCreate();
    await store.probeDml();
    expect(statements.some((s) => s.startsWith('DELETE FROM [session_event_data]'))).toBe(true);
    expect(statements.some((s) => s.includes('SCOPE_IDENTITY()'))).toBe(true);
    let parsed = 0;
    for (const s of statements)
      for (const one of s.split('; ')) {
        parseTsql(one);
        parsed++;
      }
    expect(parsed).toBeGreaterThan(40);
  });

  it('builds the mssql config from both forms and fails unreachable servers as retryable', async () => {
    expect(
      mssqlConfig(parseConnectionString('Server=h,1444;Database=d;User Id=u;Password=p;TrustServerCertificate=true')),
    ).toMatchObject({
      server: 'h',
      port: 1444,
      database: 'd',
      user: 'u',
      password: 'p',
      options: { encrypt: true, trustServerCertificate: true, useUTC: true },
    });
    const { dest } = await makeDestination({ connectionString: 'Server=127.0.0.1,1;Database=ic;User Id=u;Password=p' });
    const check = await dest.check();
    expect(check.steps[0]).toMatchObject({
      name: 'connect',
      ok: false,
      message: expect.stringMatching(/cannot be reached/),
    });
    await expect(deliver(dest, sessionItem(sampleSession()))).rejects.toThrow(
      expect.objectContaining({ code: 'IC_ERR_DESTINATION_UNAVAILABLE', retryable: true }),
    );
    await dest.close();
    const driver = openMssql(parseConnectionString('mssql://u:p@127.0.0.1:1/ic'));
    await expect(driver.tableNames()).rejects.toMatchObject({ code: 'ESOCKET' });
    await driver.close();
  });
});

describe('database errors', () => {
  it('map to codes: no space, no rights, read-only and no such database are destination-wide and retried, a deadlock is a write failure', () => {
    // Error shapes as each driver raises them (SQL Server's cannot be produced live here).
    const cases: [Record<string, unknown>, string][] = [
      [{ code: '53100', message: 'could not extend file: No space left on device' }, 'IC_ERR_DESTINATION_FULL'],
      [{ code: 'ER_RECORD_FILE_FULL', message: "The table 'session' is full" }, 'IC_ERR_DESTINATION_FULL'],
      [{ code: 'SQLITE_FULL', message: 'database or disk is full' }, 'IC_ERR_DESTINATION_FULL'],
      [{ number: 9002, message: "The transaction log for database 'ic' is full" }, 'IC_ERR_DESTINATION_FULL'],
      [{ originalError: { number: 1105 }, message: 'Could not allocate space' }, 'IC_ERR_DESTINATION_FULL'],
      [{ code: '42501', message: 'permission denied for table session' }, 'IC_ERR_DESTINATION_PERMISSION_DENIED'],
      [
        { code: 'SQLITE_READONLY', message: 'attempt to write a readonly database' },
        'IC_ERR_DESTINATION_PERMISSION_DENIED',
      ],
      [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'IC_ERR_DESTINATION_UNAVAILABLE'],
      [{ code: '3D000', message: 'database "archive" does not exist' }, 'IC_ERR_DESTINATION_UNAVAILABLE'],
      [{ code: 'ER_BAD_DB_ERROR', message: "Unknown database 'archive'" }, 'IC_ERR_DESTINATION_UNAVAILABLE'],
      [{ number: 911, message: "Database 'archive' does not exist" }, 'IC_ERR_DESTINATION_UNAVAILABLE'],
      [
        { code: '25006', message: 'cannot execute INSERT in a read-only transaction' },
        'IC_ERR_DESTINATION_PERMISSION_DENIED',
      ],
      [
        { code: 'ER_OPTION_PREVENTS_STATEMENT', message: 'The MariaDB server is running with the --read-only option' },
        'IC_ERR_DESTINATION_PERMISSION_DENIED',
      ],
      [
        { number: 3906, message: "Failed to update database 'ic' because it is read-only" },
        'IC_ERR_DESTINATION_PERMISSION_DENIED',
      ],
      [{ code: '40P01', message: 'deadlock detected' }, 'IC_ERR_DESTINATION_WRITE_FAILED'],
    ];
    for (const [raw, code] of cases) {
      const e = toDestinationError(Object.assign(new Error(String(raw.message)), raw), 'storing 3 sessions');
      expect({ code: e.code, retryable: e.retryable }, String(raw.message)).toEqual({ code, retryable: true });
      expect(DESTINATION_WIDE_CODES.has(e.code), code).toBe(code !== 'IC_ERR_DESTINATION_WRITE_FAILED');
      expect(e.message).toMatch(/^storing 3 sessions/);
    }
  });

  it('a failure to prepare the tables holds for the whole destination, whatever its cause', () => {
    const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    const e = tablesNotReady(deadlock, 'postgres://db:5432/archive');
    expect({ code: e.code, retryable: e.retryable }).toEqual({
      code: 'IC_ERR_DESTINATION_UNAVAILABLE',
      retryable: true,
    });
    expect(e.message).toMatch(/^preparing the tables in postgres:\/\/db:5432\/archive failed: deadlock detected/);
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    expect(tablesNotReady(full, 'sqlite:/x.db').code).toBe('IC_ERR_DESTINATION_FULL'); // wide already: kept
  });
});

describe('group commit', () => {
  it('batches concurrent submissions up to the limit and settles each with its own result', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, string>((jobs) => {
      batches.push(jobs);
      return Promise.resolve(jobs.map((j) => `ok ${j}`));
    }, 4);
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => gc.submit(i)));
    expect(out).toEqual(Array.from({ length: 10 }, (_, i) => `ok ${i}`));
    expect(batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
  });

  it('splits a failed batch so one bad job fails alone; a destination-wide failure fails the whole batch', async () => {
    const gc = new GroupCommit<number, number>((jobs) => {
      if (jobs.includes(2)) return Promise.reject(new DestinationError('IC_ERR_DESTINATION_BAD_ITEM', 'bad 2'));
      return Promise.resolve(jobs);
    }, 10);
    const r = await Promise.allSettled([1, 2, 3].map((j) => gc.submit(j)));
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    // Destination-wide failures: every job fails with the batch, nothing is tried again one by one.
    for (const code of [
      'IC_ERR_DESTINATION_UNAVAILABLE',
      'IC_ERR_DESTINATION_FULL',
      'IC_ERR_DESTINATION_PERMISSION_DENIED',
    ] as const) {
      let calls = 0;
      const down = new GroupCommit<number, number>(() => {
        calls++;
        return Promise.reject(new DestinationError(code, 'down'));
      }, 10);
      const all = await Promise.allSettled([1, 2, 3].map((j) => down.submit(j)));
      expect(all.map((x) => x.status === 'rejected' && (x.reason as { code: string }).code)).toEqual([
        code,
        code,
        code,
      ]);
      expect(calls, code).toBe(1);
    }
  });

  it('a job whose result is an Error fails alone, without the batch being written again job by job', async () => {
    const calls: number[][] = [];
    const gc = new GroupCommit<number, number>((jobs) => {
      calls.push(jobs);
      return Promise.resolve(
        jobs.map((j) => (j === 2 ? new DestinationError('IC_ERR_DESTINATION_BAD_ITEM', 'bad 2') : j)),
      );
    }, 10);
    const r = await Promise.allSettled([1, 2, 3].map((j) => gc.submit(j)));
    expect(r.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual([1, 'bad 2', 3]);
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('runs as many batches at once as it has writers; what arrives while all are busy waits for the next', async () => {
    for (const writers of [1, 2]) {
      const gates: (() => void)[] = [];
      const batches: number[][] = [];
      let running = 0;
      let most = 0;
      const gc = new GroupCommit<number, number>(
        async (jobs) => {
          batches.push(jobs);
          most = Math.max(most, ++running);
          await new Promise<void>((r) => gates.push(r));
          running--;
          return jobs.map((j) => j * 10);
        },
        10,
        0,
        writers,
      );
      const turn = () => new Promise((r) => setImmediate(r));
      const all = [gc.submit(1)];
      await turn(); // the first writer has taken [1] and is writing
      all.push(gc.submit(2), gc.submit(3));
      await turn(); // with a second writer, it has taken [2, 3]
      all.push(gc.submit(4));
      await turn();
      while (gates.length) {
        gates.shift()!();
        await turn();
      }
      expect(await Promise.all(all)).toEqual([10, 20, 30, 40]);
      expect(most).toBe(writers);
      expect(batches).toEqual(writers === 1 ? [[1], [2, 3, 4]] : [[1], [2, 3], [4]]);
    }
  });

  it('a driver says how many batches it writes at once: one on SQLite and SQL Server, two on the others', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ic-sql-writers-')), 'x.db');
    const writers: Record<string, number> = {};
    for (const cs of [
      `sqlite:${file}`,
      'postgres://u@127.0.0.1:1/x',
      'mysql://u@127.0.0.1:1/x',
      'mssql://u:p@127.0.0.1:1/x',
    ]) {
      const driver = openDriver(parseConnectionString(cs), cs);
      writers[driver.engine] = driver.writers;
      await driver.close().catch(() => undefined); // nothing listens on port 1
    }
    expect(writers).toEqual({ sqlite: 1, postgres: 2, mysql: 2, mssql: 1 });
  });

  it('drops a job whose call was aborted before its batch started, writing nothing for it', async () => {
    const written: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommit<number, number>(async (jobs) => {
      await gate;
      written.push(...jobs);
      return jobs;
    }, 10);
    const first = gc.submit(1);
    await Promise.resolve();
    const ac = new AbortController();
    const second = gc.submit(2, ac.signal);
    ac.abort();
    release();
    await first;
    await expect(second).rejects.toThrow(expect.objectContaining({ code: 'IC_ERR_DESTINATION_WRITE_FAILED' }));
    expect(written).toEqual([1]);
  });
});

describe('client packages', () => {
  it('importing the plugin loads none of the four; opening a destination loads its engine only', () => {
    const plugin = new URL('../dist/index.js', import.meta.url).href;
    const file = join(mkdtempSync(join(tmpdir(), 'ic-sql-load-')), 'x.db');
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
        const loaded = () => [...new Set(Object.keys(createRequire(import.meta.url).cache)
          .map((p) => /node_modules\\/(mssql|tedious|mysql2|pg|pg-copy-streams|better-sqlite3)\\//.exec(p)?.[1]).filter(Boolean))].sort().join(',');
        const sql = await import(${JSON.stringify(plugin)});
        const before = loaded();
        const d = sql.openDriver(sql.parseConnectionString('sqlite:${file}'), 'sqlite:${file}');
        await d.tableNames();
        await d.close();
        const sqlite = loaded();
        const p = sql.openDriver(sql.parseConnectionString('postgres://u@127.0.0.1:1/x'), 'postgres://u@127.0.0.1:1/x');
        await p.close();
        console.log(JSON.stringify([before, sqlite, loaded()]));`,
      ],
      { cwd: fileURLToPath(new URL('..', import.meta.url)) },
    );
    expect(JSON.parse(out.toString())).toEqual(['', 'better-sqlite3', 'better-sqlite3,pg,pg-copy-streams']);
  });
});

describe('plugin config', () => {
  it('a connection string with no known form fails create() with a coded config error', async () => {
    await expect(makeDestination({ connectionString: 'nonsense' })).rejects.toThrow(
      expect.objectContaining({ code: 'IC_ERR_CONFIG_INVALID' }),
    );
    const sessions: Session[] = sampleSessions({ count: 2 });
    expect(sessions[1]!.lsid).toBe('s00000001');
  });

  it('refuses a relative SQLite path (the service would open another file) and names the absolute one', async () => {
    for (const relative of ['sqlite:archive.db', 'sqlite:./data/archive.db'])
      await expect(makeDestination({ connectionString: relative })).rejects.toThrow(
        expect.objectContaining({
          code: 'IC_ERR_CONFIG_INVALID',
          message: expect.stringContaining(
            `give the absolute path, e.g. sqlite:${join(process.cwd(), relative.slice(7))}`,
          ),
        }),
      );
    const dir = mkdtempSync(join(tmpdir(), 'ic-sql-abs-'));
    for (const absolute of [`sqlite:${dir}/a.db`, `sqlite://${dir}/b.db`])
      await (await makeDestination({ connectionString: absolute })).dest.close();
  });
});
