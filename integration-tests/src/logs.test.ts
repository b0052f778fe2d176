/** `ic logs` and `ic settings`: rolled JSON log files, readable output, removal after the configured days. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runIc, addFilesDestination, addSimulatorSite } from './ic-helpers.js';
import { IC_BIN } from './paths.js';
import { isRoot, tmpfs } from './tmpfs.js';
import Database from 'better-sqlite3';
import { ApplianceSimulator } from './simulator/index.js';

describe('ic logs / ic settings (built binary)', () => {
  it('writes daily-rolled JSON logs, prints them readably or as JSON, and removes files past logRemovalDays', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ic-logs-'));
    const ic = async (...args: string[]) => (await runIc(home, args)).stdout;
    await ic('init');
    await addFilesDestination(home, join(home, 'f'));
    const today = new Date().toISOString().slice(0, 10);
    const names = await readdir(join(home, 'logs'));
    expect(names).toContain(`client.${today}.1.log`);
    const json = (await ic('logs', '--json', '-n', '5')).trim().split('\n');
    expect(json.length).toBeGreaterThan(0);
    for (const l of json) expect(JSON.parse(l)).toMatchObject({ name: 'client', level: expect.any(Number) });
    const readable = await ic('logs');
    expect(readable).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}/m);
    // --level: that level and above only; the last -n of those.
    const now = Date.now();
    await appendFile(
      join(home, 'logs', `client.${today}.1.log`),
      `{"level":40,"time":${now},"msg":"a warning"}\n{"level":30,"time":${now},"msg":"an info"}\n{"level":50,"time":${now},"msg":"an error"}\n`,
    );
    const warnings = (await ic('logs', '--level', 'warn')).trim().split('\n');
    expect(warnings.map((l) => l.replace(/^\S+ /, ''))).toEqual(['WARN  a warning', 'ERROR an error']);
    expect((await ic('logs', '--level', 'error', '-n', '1')).trim()).toMatch(/ERROR an error$/);
    expect((await runIc(home, ['logs', '--level', 'loud'])).code).toBe(2);
    expect(await ic('settings', 'show')).toMatch(/^logRemovalDays +never: log files are kept {2}\(default\)$/m);
    await writeFile(join(home, 'logs', 'client.2020-01-01.1.log'), '{"level":30,"time":0,"msg":"old"}\n');
    await writeFile(join(home, 'logs', 'service.2020-01-02.1.log'), '{"level":30,"time":0,"msg":"old"}\n');
    expect(await ic('settings', 'set', '--log-removal-days', '30')).toMatch(/saved/);
    // What is in effect: the value set, and the schema's defaults for the rest — shown as such, not stored.
    const shown = await ic('settings', 'show');
    expect(shown).toMatch(/^logRemovalDays +30$/m);
    expect(shown).toMatch(/^settleSeconds +60 {2}\(default\)$/m);
    expect(shown).toMatch(/^overlapSeconds +3600 {2}\(default\)$/m);
    const left = await readdir(join(home, 'logs'));
    expect(left.filter((n) => n.includes('2020-'))).toEqual([]);
    expect(left).toContain(`client.${today}.1.log`);
    expect(JSON.parse(await ic('settings', 'show', '--json'))).toMatchObject({
      logRemovalDays: 30,
      logDirectory: join(home, 'logs'),
      settleSeconds: 60,
      overlapSeconds: 3600,
      sessionsInFlight: 1000,
    });
    // --keep-logs undoes it (there is no other way back to "keep").
    expect(await ic('settings', 'set', '--keep-logs')).toMatch(/saved/);
    expect(await ic('settings', 'show')).toMatch(/^logRemovalDays +never: log files are kept {2}\(default\)$/m);
    expect(JSON.parse(await ic('settings', 'show', '--json'))).toMatchObject({ logRemovalDays: null });
    expect((await runIc(home, ['settings', 'set', '--keep-logs', '--log-removal-days', '3'])).code).toBe(2);
  }, 60_000);

  it('sessions in flight and downloads per transfer: saved, shown, refused out of range, used by the next run', async () => {
    const sim = new ApplianceSimulator({ sessions: 6 });
    const address = await sim.start();
    try {
      const home = await mkdtemp(join(tmpdir(), 'ic-limits-'));
      const ic = (...args: string[]) => runIc(home, args);
      await ic('init');
      expect((await addSimulatorSite(home, address, ApplianceSimulator.caFile)).code).toBe(0);
      expect((await addFilesDestination(home, join(home, 'f'))).code).toBe(0);
      expect((await ic('schedule', 'add', 'h', '--every', '1h', '--transfer', 'main:files:session-data')).code).toBe(0);
      expect((await ic('settings', 'set', '--sessions-in-flight', '50', '--downloads', '2')).stdout).toMatch(/saved/);
      const refused = await ic('settings', 'set', '--downloads', '0');
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/downloadsPerTransfer/);
      expect(JSON.parse((await ic('settings', 'show', '--json')).stdout)).toMatchObject({
        sessionsInFlight: 50,
        downloadsPerTransfer: 2,
      });
      expect((await ic('schedule', 'run', 'h')).code).toBe(0);
      const finished = (await ic('logs', '--json', '-n', '200')).stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'transfer finished');
      expect(finished).toMatchObject({ sessionsInFlight: 50, downloads: 2, delivered: 6 });
    } finally {
      await sim.stop();
    }
  }, 60_000);

  it('a log directory that cannot be made is refused when set, and one set before locks no command out', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ic-badlog-'));
    const ic = (...args: string[]) => runIc(home, args);
    await ic('init');
    const underAFile = join(home, 'secret.key', 'logs');
    const refused = await ic('settings', 'set', '--log-directory', underAFile);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /IC_ERR_CONFIG_INVALID: --log-directory \S+ cannot be used \(ENOTDIR[^)]*\); give a directory this user can create and write in/,
    );
    // Stored anyway (by hand, an older version, a directory that went away and is now a file): every command ran
    // into "ENOTDIR … mkdir" and failed, `ic settings set --log-directory` too.
    const db = new Database(join(home, 'settings.db'));
    db.prepare(`INSERT INTO ic_settings_meta (key, value) VALUES ('application', ?)`).run(
      JSON.stringify({ logDirectory: underAFile }),
    );
    db.close();
    const list = await ic('site', 'list');
    expect(list.code).toBe(0);
    expect(list.stderr).toMatch(
      /warning: the client log in \S+ cannot be written \(ENOTDIR[^)]*\); nothing more is logged/,
    );
    expect((await ic('settings', 'set', '--log-directory', 'logs')).code).toBe(0);
    const again = await ic('site', 'list');
    expect(again.stderr).toBe('');
    expect(await readdir(join(home, 'logs'))).not.toEqual([]);
  });

  // A full log disk killed a run (and would kill the service): pino's transport emitted an 'error' nobody heard.
  it.runIf(isRoot)(
    'a log directory on a full disk: a run and the service go on, say it once, and the service logs to stderr',
    async () => {
      const sim = new ApplianceSimulator({ sessions: 6 });
      const address = await sim.start();
      const home = await mkdtemp(join(tmpdir(), 'ic-fulllog-'));
      const fs = await tmpfs('size=64k');
      const logs = fs.dir;
      let child: ChildProcess | undefined;
      try {
        const ic = (...args: string[]) => runIc(home, args);
        await ic('init');
        expect((await addSimulatorSite(home, address, ApplianceSimulator.caFile)).code).toBe(0);
        expect((await addFilesDestination(home, join(home, 'f'))).code).toBe(0);
        expect((await ic('schedule', 'add', 'h', '--every', '1h', '--transfer', 'main:files:session-data')).code).toBe(
          0,
        );
        expect((await ic('settings', 'set', '--log-directory', logs)).code).toBe(0);
        await writeFile(join(logs, 'filler'), Buffer.alloc(64 * 1024)).catch(() => undefined); // the disk is full
        const run = await ic('schedule', 'run', 'h');
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/run 1 succeeded/);
        expect(run.stderr).toMatch(
          /warning: the client log in \S+ cannot be written \(ENOSPC[^)]*\); nothing more is logged until ic starts again/,
        );
        expect((await readdir(join(home, 'f'))).filter((n) => n.endsWith('.xml'))).toHaveLength(6);
        // The service: up through a run (of a schedule that never ran, so it runs at start), its lines on standard
        // error (a service manager keeps them).
        expect((await ic('schedule', 'add', 'g', '--every', '1h', '--transfer', 'main:files:session-data')).code).toBe(
          0,
        );
        child = spawn(process.execPath, [IC_BIN, 'service', 'run', '--health-port', '0'], {
          env: { ...process.env, IC_HOME: home },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
        const end = Date.now() + 30_000;
        while (!/"msg":"schedule run finished"/.test(stderr) && child.exitCode === null && Date.now() < end)
          await new Promise((r) => setTimeout(r, 100));
        expect(child.exitCode).toBeNull();
        expect(stderr).toMatch(
          /warning: the service log in \S+ cannot be written \(ENOSPC[^)]*\); its lines go to standard error/,
        );
        expect(stderr).toMatch(/"msg":"schedule run finished"/);
        // From its first line: the full disk is found before any line is handed to the file (the transport lost
        // those it took before its error came, and a run over by then went unlogged — a flaky test, too).
        expect(stderr).toMatch(/"msg":"service started"/);
        child.kill('SIGTERM');
        const [code] = (await once(child, 'exit')) as [number];
        expect(code).toBe(0);
      } finally {
        if (child && child.exitCode === null) {
          child.kill('SIGKILL');
          await once(child, 'exit');
        }
        fs.done();
        await sim.stop();
      }
    },
    60_000,
  );
});
