/**
 * `ic init --settings` and `ic settings migrate` as a user runs them: the built binary, a settings database in a
 * fresh PostgreSQL database on the local server (and SQLite), the appliance simulator over HTTPS.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFilesDestination, addSimulatorSite, runIc, type IcResult } from './ic-helpers.js';
import { IC_BIN } from './paths.js';
import { ApplianceSimulator } from './simulator/index.js';

const { createDatabase } = (await import('../../plugins/sql/dist/test-helpers.js')) as {
  createDatabase: (engine: 'postgres') => Promise<{
    connectionString: string;
    sql(text: string): Promise<Record<string, unknown>[]>;
    drop(): Promise<void>;
  }>;
};

/** The local server trusts every connection; the password is there to prove it is never shown or stored plain. */
const PASSWORD = 'pg-Secret-4711';
const withPassword = (cs: string) => {
  const u = new URL(cs);
  u.password = PASSWORD;
  return u.href;
};

let home: string;
let sim: ApplianceSimulator;
let pg: Awaited<ReturnType<typeof createDatabase>>;
let pg2: Awaited<ReturnType<typeof createDatabase>>;
const printed: string[] = [];

const ic = async (args: string[], env: Record<string, string> = {}, at = home) => {
  const r = await runIc(at, args, env);
  printed.push(r.stdout, r.stderr);
  return r;
};
const json = <T = Record<string, unknown>>(r: IcResult): T => JSON.parse(r.stdout) as T;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ic-home-pg-'));
  sim = new ApplianceSimulator({ sessions: 15, recordingBytes: 1024, backupBytes: 2048 });
  await sim.start();
  pg = await createDatabase('postgres');
  pg2 = await createDatabase('postgres');
});
afterAll(async () => {
  await sim.stop();
  await pg.drop();
  await pg2.drop();
});

describe('settings database in PostgreSQL (built binary)', () => {
  it('ic init --settings creates the tables there and keeps the connection encrypted; bad ones are refused', async () => {
    const nonsense = await ic(['init', '--settings', 'not a connection'], {}, await mkdtemp(join(tmpdir(), 'ic-x-')));
    expect(nonsense.code).toBe(2);
    expect(nonsense.stderr).toMatch(/IC_ERR_CONFIG_INVALID: connectionString has no known form/);
    const mysql = await ic(
      ['init', '--settings', 'mysql://root@127.0.0.1/test'],
      {},
      await mkdtemp(join(tmpdir(), 'ic-x-')),
    );
    expect(mysql.code).toBe(2);
    expect(mysql.stderr).toMatch(/a mysql database cannot hold the settings; use SQLite, PostgreSQL or SQL Server/);
    const emptyHome = await mkdtemp(join(tmpdir(), 'ic-x-'));
    const down = await ic(['init', '--settings', `postgres://ic:${PASSWORD}@127.0.0.1:1/nowhere`], {}, emptyHome);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(
      /settings database postgres:\/\/127.0.0.1:1\/nowhere cannot be opened .*check the server/,
    );
    expect(await readdir(emptyHome)).not.toContain('settings-location.json'); // nothing switched to a dead database

    const r = await ic(['init', '--settings', withPassword(pg.connectionString), '--json']);
    expect(r.code).toBe(0);
    const info = json(r);
    expect(info).toMatchObject({ created: true, settingsFrom: 'file', schemaVersion: 4 });
    expect(info.settings).toMatch(/^postgres:\/\/127.0.0.1:5432\/ic_sql_test_/);
    expect(await readdir(home)).not.toContain('settings.db');
    const tables = (await pg.sql(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)).map(
      (t) => t.table_name,
    );
    expect(tables).toEqual(expect.arrayContaining(['ic_settings_meta', 'site', 'delivered', 'run', 'lease']));
    expect(await readFile(join(home, 'settings-location.json'), 'utf8')).not.toContain(PASSWORD);
    expect((await ic(['init', '--json'])).stdout).toMatch(/"created": false/);
    // The same database named another way (localhost for 127.0.0.1, the database's case) is not another one.
    const same = await ic(['init', '--settings', pg.connectionString.replace('127.0.0.1', 'localhost'), '--json']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/"created": false/);
    const other = await ic(['init', '--settings', pg2.connectionString]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/already uses the settings database postgres:\/\/127.0.0.1.*ic settings migrate --to/);
  });

  it('sites, destinations and schedules live there; a scheduled transfer runs from it', async () => {
    expect((await addSimulatorSite(home, sim.address, ApplianceSimulator.caFile)).code).toBe(0);
    expect((await addFilesDestination(home, join(home, 'files'))).code).toBe(0);
    const add = await ic(['schedule', 'add', 'hourly', '--every', '1h', '--transfer', 'main:files:session-data']);
    expect(add.code).toBe(0);
    const run = await ic(['schedule', 'run', 'hourly', '--json']);
    expect(json(run)).toMatchObject({ outcome: 'succeeded' });
    const closed = sim.closedSessions().length;
    expect((await readdir(join(home, 'files'))).filter((f) => f.endsWith('.xml'))).toHaveLength(closed);
    expect((await pg.sql('SELECT name FROM site')).map((r) => r.name)).toEqual(['main']);
    expect(Number((await pg.sql('SELECT COUNT(*) AS n FROM delivered'))[0]!.n)).toBe(closed);
    const unit = await ic(['service', 'install', '--dry-run']);
    expect(unit.code).toBe(0);
    expect(unit.stdout).toMatch(/ExecStart=.* service run/);
    const shown = json(await ic(['settings', 'show', '--json']));
    expect(shown.settingsDatabase).toMatch(/^postgres:\/\/127.0.0.1:5432\//);
    // IC_SETTINGS_DB names the database for a data directory that has no location file (containers).
    const bare = await mkdtemp(join(tmpdir(), 'ic-env-'));
    const viaEnv = await ic(['site', 'list', '--json'], { IC_SETTINGS_DB: pg.connectionString }, bare);
    expect(viaEnv.code).toBe(0);
    expect(json<{ name: string }[]>(viaEnv).map((x) => x.name)).toEqual(['main']);
  });

  it('ic settings migrate copies everything to SQLite and back; nothing is delivered twice after a switch', async () => {
    const sqliteFile = join(home, 'moved', 'settings.db');
    const toSqlite = await ic(['settings', 'migrate', '--to', `sqlite:${sqliteFile}`, '--json']);
    expect(toSqlite.code).toBe(0);
    const report = json<{ rows: Record<string, number>; switched: boolean; to: string }>(toSqlite);
    expect(report).toMatchObject({ switched: true, to: `sqlite:${sqliteFile}` });
    expect(report.rows).toMatchObject({
      site: 1,
      destination: 1,
      schedule: 1,
      run: 1,
      delivered: sim.closedSessions().length,
    });
    expect(json(await ic(['settings', 'show', '--json'])).settingsDatabase).toBe(`sqlite:${sqliteFile}`);
    // The run history, cursor and ledger came along: the next run delivers nothing again.
    const again = json<{ outcome: string; transfers: { delivered: number; skipped: number }[] }>(
      await ic(['schedule', 'run', 'hourly', '--json']),
    );
    expect(again.outcome).toBe('succeeded');
    expect(again.transfers[0]!.delivered).toBe(0);
    expect((await readdir(join(home, 'files'))).filter((f) => /\.\d+\.xml$/.test(f))).toEqual([]);
    expect(json<unknown[]>(await ic(['schedule', 'list', '--json']))).toHaveLength(1);

    // Back into the PostgreSQL database, which still holds the old copy: refused without --replace.
    const refused = await ic(['settings', 'migrate', '--to', withPassword(pg.connectionString)]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already holds settings \(.*site: 1.*\); pass --replace/);
    const same = await ic(['settings', 'migrate', '--to', `sqlite:${sqliteFile}`]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/is the settings database in use already/);
    const back = await ic(['settings', 'migrate', '--to', withPassword(pg.connectionString), '--replace']);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(/delivered\s+\d+ rows copied/);
    expect(back.stdout).toMatch(/switched: .* now uses postgres:\/\/127.0.0.1:5432\//);
    expect(Number((await pg.sql('SELECT COUNT(*) AS n FROM run'))[0]!.n)).toBe(2);
  });

  it('ic settings migrate is refused while the service runs on the current database', async () => {
    const child = spawn(process.execPath, [IC_BIN, 'service', 'run', '--health-port', '0'], {
      env: { ...process.env, IC_HOME: home },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await once(createInterface({ input: child.stdout }), 'line');
      const r = await ic(['settings', 'migrate', '--to', pg2.connectionString]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/the service is running \(pid \d+\).*stop it/);
      expect(await pg2.sql(`SELECT table_name FROM information_schema.tables WHERE table_name = 'site'`)).toEqual([]);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('never prints or logs the settings password', async () => {
    expect(printed.join('\n')).not.toContain(PASSWORD);
    const logs = join(home, 'logs');
    const files = await readdir(logs);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(await readFile(join(logs, f), 'utf8')).not.toContain(PASSWORD);
  });
});
