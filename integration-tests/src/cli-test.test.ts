/** `ic test`, the API tester: windows, lsids and saved XML files into destinations, without moving cursors. */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFilesDestination, addSimulatorSite, addSqlDestination, holdPair, runIc } from './ic-helpers.js';
import { IC_BIN } from './paths.js';
import { ApplianceSimulator } from './simulator/index.js';
import { isRoot, tmpfs } from './tmpfs.js';

let home: string;
let sim: ApplianceSimulator;
const ic = (...args: string[]) => runIc(home, args);
const count = (file: string, sql: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ic-tester-'));
  sim = new ApplianceSimulator({ sessions: 20, recordingBytes: 1024 });
  const a = await sim.start();
  await ic('init');
  await addSimulatorSite(home, a, ApplianceSimulator.caFile);
  await addFilesDestination(home, join(home, 'files'));
  await addSqlDestination(home, 'db', `sqlite:${join(home, 'db.sqlite')}`);
  await addSqlDestination(home, 'db2', `sqlite:${join(home, 'db2.sqlite')}`);
});
afterAll(async () => {
  await sim.stop();
});

describe('ic test (built binary)', () => {
  it('pulls one lsid and a time window into destinations and never moves a cursor or fills the ledger', async () => {
    const one = sim.session(3);
    const r = await ic('test', '--site', 'main', '--lsid', one.lsid, '--destination', 'db');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no cursor was moved/);
    expect(count(join(home, 'db.sqlite'), `SELECT COUNT(*) AS n FROM session WHERE lsid = '${one.lsid}'`)).toBe(1);
    const first = sim.session(0);
    const start = new Date(first.start * 1000).toISOString();
    const w = await ic(
      'test',
      '--site',
      'main',
      '--start',
      start,
      '--duration',
      '1h',
      '--destination',
      'files',
      '--ops',
      'session-data,session-recording',
      '--json',
    );
    expect(w.code).toBe(0);
    const inWindow = sim.closedSessions().filter((s) => s.start >= first.start && s.start < first.start + 3600);
    const outcome = JSON.parse(w.stdout) as { ok: boolean; transfers: { byType: Record<string, number> }[] };
    expect(outcome.ok).toBe(true);
    expect(outcome.transfers[0]!.byType['session-data']).toBe(inWindow.length);
    expect(outcome.transfers[0]!.byType['session-recording'] ?? 0).toBe(inWindow.filter((s) => s.hasRecording).length);
    const settings = join(home, 'settings.db');
    expect(count(settings, 'SELECT COUNT(*) AS n FROM cursor')).toBe(0);
    expect(count(settings, 'SELECT COUNT(*) AS n FROM delivered')).toBe(0);
  });

  it('waits while another run moves the same site → destination pair, and says so', async () => {
    const one = sim.session(4);
    const held = Date.now();
    holdPair(home, 'main->db2', 'elsewhere:1 run 7', 3);
    const r = await ic('test', '--site', 'main', '--lsid', one.lsid, '--destination', 'db2', '--json');
    expect(r.code).toBe(0);
    expect(Date.now() - held).toBeGreaterThanOrEqual(2000); // the lease ran out (3 s, whole seconds) before it went on
    expect(r.stderr).toBe(
      'main->db2 waits: another run is moving this pair (elsewhere:1 run 7); it goes on from where that one leaves off\n',
    );
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, transfers: [{ delivered: 1 }] });
    expect(count(join(home, 'db2.sqlite'), `SELECT COUNT(*) AS n FROM session WHERE lsid = '${one.lsid}'`)).toBe(1);
    expect(count(join(home, 'settings.db'), 'SELECT COUNT(*) AS n FROM lease')).toBe(0); // its own released
  });

  it('parses previously downloaded XML files into a destination', async () => {
    const xml = (await readdir(join(home, 'files')))
      .filter((f) => f.endsWith('.xml'))
      .map((f) => join(home, 'files', f));
    expect(xml.length).toBeGreaterThan(0);
    const r = await ic('test', '--xml', ...xml, '--destination', 'db2', '--site', 'main');
    expect(r.code).toBe(0);
    expect(count(join(home, 'db2.sqlite'), 'SELECT COUNT(*) AS n FROM session')).toBe(xml.length);
  });

  it('draws a progress bar on a terminal (not in --json or a pipe) and ends with the summary table', async () => {
    const xml = (await readdir(join(home, 'files')))
      .filter((f) => f.endsWith('.xml'))
      .map((f) => join(home, 'files', f));
    // `script` gives the command a pseudo-terminal, so standard error is a terminal as for a user.
    const command = [
      process.execPath,
      IC_BIN,
      'test',
      '--xml',
      ...xml,
      '--destination',
      'db',
      '--destination',
      'files',
      '--site',
      'main',
    ];
    const { stdout } = await promisify(execFile)('script', ['-qfec', command.join(' '), '/dev/null'], {
      env: { ...process.env, IC_HOME: home },
    });
    const frames = stdout.split('\r').filter((f) => f.startsWith('['));
    expect(frames[0]).toMatch(/^\[\.{30}\] {3}0% {2}main -> db/);
    expect(frames.some((f) => /^\[#{15}\.{15}\] {2}50% {2}main -> files/.test(f))).toBe(true); // first of two passes done
    expect(frames.at(-1)).toMatch(/^\[#{30}\] 100% {2}main -> files {2}\d+ items delivered/);
    expect(stdout).toMatch(/SITE -> DESTINATION +DELIVERED/);
    const asJson = await promisify(execFile)('script', ['-qfec', `${command.join(' ')} --json`, '/dev/null'], {
      env: { ...process.env, IC_HOME: home },
    });
    expect(asJson.stdout).not.toContain('[#');
    expect(asJson.stdout).toMatch(/"ok": true/);
    const piped = await ic('test', '--xml', ...xml, '--destination', 'db', '--site', 'main');
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain('[#');
  });

  it('refuses bad arguments with exit 2 and says what to do', async () => {
    expect((await ic('test', '--site', 'main', '--lsid', 'x')).stderr).toMatch(/--destination <name> is required/);
    expect(
      (await ic('test', '--site', 'main', '--lsid', 'x', '--destination', 'db', '--ops', 'videos')).stderr,
    ).toMatch(/unknown data type\(s\) videos/);
    const missing = await ic('test', '--xml', join(home, 'no-such.xml'), '--destination', 'db');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/IC_ERR_CONFIG_INVALID: --xml \S+no-such\.xml cannot be read \(ENOENT\)/);
    const broken = join(home, 'broken.xml');
    await writeFile(broken, '<session_list><session lsid="x"><broken\n');
    const malformed = await ic('test', '--xml', broken, '--destination', 'db');
    expect(malformed.code).toBe(1);
    expect(malformed.stdout).toContain(`IC_ERR_SITE_REPORT_MALFORMED: ${broken}: report is not well-formed`);
    const noSite = await ic('test', '--xml', '/tmp/x.xml', '--destination', 'files', '--ops', 'session-recording');
    expect(noSite.code).toBe(2);
    expect(noSite.stderr).toMatch(/need --site to connect back/);
    expect(
      (await ic('test', '--site', 'main', '--destination', 'db', '--start', 'yesterday-ish', '--duration', '1h'))
        .stderr,
    ).toMatch(/is not a date\/time/);
    const routing = await ic(
      'test',
      '--site',
      'main',
      '--lsid',
      'x',
      '--destination',
      'db',
      '--ops',
      'session-recording',
    );
    expect(routing.code).toBe(2);
    expect(routing.stderr).toMatch(
      /IC_ERR_DESTINATION_OPERATION_UNSUPPORTED: ic test: no destination given takes session-recording \(db \(sql\): session-data, system-information\); drop it from --ops or add a --destination that declares it, e\.g\. a file-system one/,
    );
    const idle = await ic(
      ...['test', '--site', 'main', '--lsid', 'x', '--destination', 'db', '--destination', 'files'],
      ...['--ops', 'session-recording'],
    );
    expect(idle.code).toBe(2);
    expect(idle.stderr).toMatch(/ic test: db takes none of session-recording/);
  });

  it('exits when a destination cannot be opened after another was started (it used to hang on that one)', async () => {
    const r = await ic('test', '--site', 'main', '--lsid', 'x', '--destination', 'db', '--destination', 'nosuch');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/IC_ERR_NOT_FOUND: no destination named "nosuch"/);
  }, 30_000);

  it('gives each destination the data types it declares, and says what one did not get', async () => {
    const first = sim.session(0);
    const args = ['test', '--site', 'main', '--start', new Date(first.start * 1000).toISOString(), '--duration', '1h'];
    const both = [...args, '--destination', 'files', '--destination', 'db', '--ops', 'session-data,session-recording'];
    const inWindow = sim.closedSessions().filter((s) => s.start >= first.start && s.start < first.start + 3600);
    const recorded = inWindow.filter((s) => s.hasRecording).length;
    expect(recorded).toBeGreaterThan(0);
    const j = await ic(...both, '--json');
    expect(j.code).toBe(0);
    const { transfers } = JSON.parse(j.stdout) as {
      transfers: { transfer: string; dataTypes: string[]; byType: Record<string, number>; window?: unknown }[];
    };
    expect(transfers.map((t) => [t.transfer, t.dataTypes, t.byType])).toEqual([
      [
        'main->files',
        ['session-data', 'session-recording'],
        { 'session-data': inWindow.length, 'session-recording': recorded },
      ],
      ['main->db', ['session-data'], { 'session-data': inWindow.length }],
    ]);
    expect(transfers[0]!.window).toBeUndefined(); // a query of its own, not a cursor window
    const text = await ic(...both);
    expect(text.stdout).toMatch(/^note: db \(sql\) gets session-data only; it does not take session-recording$/m);
    expect(text.stdout).toMatch(
      new RegExp(`main->db +${inWindow.length} +0 +0 +0 B +session-data ${inWindow.length}$`, 'm'),
    );
  });

  it('says when nothing was delivered because nothing began in the window, with the appliance clock', async () => {
    const r = await ic(
      ...['test', '--site', 'main', '--start', '2001-01-01T00:00Z', '--duration', '1h', '--destination', 'db'],
    );
    expect(r.code).toBe(0);
    const said = /nothing delivered: no session began in that window \(the appliance's clock reads (\S+)\)/.exec(
      r.stdout,
    );
    expect(said).not.toBeNull();
    // The simulator's clock stands still; the host's moves on during the run (and the offset is whole seconds).
    expect(Math.abs(Date.parse(said![1]!) / 1000 - sim.now)).toBeLessThan(120);
  });

  it.runIf(isRoot)(
    'says when a destination cannot take anything (a read-only file system) and that nothing more was tried for it',
    async () => {
      const fs = await tmpfs('size=1m,ro');
      const dir = fs.dir;
      try {
        const addRo = (...more: string[]) =>
          ic('destination', 'add', 'ro', '--plugin', 'file-system', '--set', `destinationDirectory=${dir}`, ...more);
        const add = await addRo();
        expect(add.code).toBe(1); // its check writes a probe file, which fails
        expect(add.stdout).toMatch(/FAIL writable: .*read-only \(EROFS\); mount it read-write/);
        expect((await addRo('--no-test')).code).toBe(0);
        const first = sim.session(0);
        const r = await ic(
          ...['test', '--site', 'main', '--start', new Date(first.start * 1000).toISOString(), '--duration', '7d'],
          ...['--destination', 'ro'],
        );
        expect(r.code).toBe(1);
        expect(r.stdout).toMatch(/^main->ro +0 +0 +1 /m); // one attempt, the rest not tried
        expect(r.stdout).toMatch(
          /^main->ro: the destination cannot take anything now \(IC_ERR_DESTINATION_PERMISSION_DENIED\), so nothing more was tried for it/m,
        );
      } finally {
        fs.done();
        await ic('destination', 'remove', 'ro');
      }
    },
  );
});
