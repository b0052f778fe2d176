/**
 * `ic service run|status|install|uninstall` as a user runs them: the built binary, a real settings database,
 * the simulator; SIGTERM in the middle of a run; /health and /metrics.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_NODE_FLAGS } from '@integration-client/core';
import { addSimulatorSite, holdPair, logLines, runIc } from './ic-helpers.js';
import { IC_BIN } from './paths.js';
import { ApplianceSimulator } from './simulator/index.js';

let home: string;
let files: string;
let sim: ApplianceSimulator;

const ic = (...args: string[]) => runIc(home, args);

/** Starts `ic service run`; resolves once it printed its health URL. */
async function startService(nodeFlags: readonly string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...nodeFlags, IC_BIN, 'service', 'run', '--health-port', '0'], {
    env: { ...process.env, IC_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const url = /health (http:\/\/127\.0\.0\.1:\d+)\/health/.exec(line)?.[1];
  if (!url) throw new Error(`unexpected first line: ${line}`);
  return { child, url };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const status = async () =>
  JSON.parse((await ic('service', 'status', '--json', '--unit-dir', join(home, 'units'))).stdout) as {
    service: string;
    pid?: number;
    lastProgramRun?: { at: string; command: string };
    lastRun?: { id: number; outcome?: string; counts: Record<string, number> };
    runningNow: { schedule: string; transfers: Record<string, { items: number; bytes: number }> }[];
    schedules: { name: string; nextRun?: string }[];
  };
/** The process has ended: gone, or a zombie nobody reaps (a detached child whose parent exited, in a container). */
const ended = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] === 'Z';
  } catch {
    return true;
  }
};
const xmlCount = async () => (await readdir(files)).filter((f) => f.endsWith('.xml')).length;
const flvCount = async () => (await readdir(files)).filter((f) => f.endsWith('.flv')).length;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ic-svc-'));
  files = join(home, 'files');
  // Slow answers so that a SIGTERM lands in the middle of the first run.
  sim = new ApplianceSimulator({ sessions: 60, recordingBytes: 64 * 1024, faults: { latencyMs: 40 } });
  const a = await sim.start();
  await ic('init');
  expect((await addSimulatorSite(home, a, ApplianceSimulator.caFile)).code).toBe(0);
  expect(
    (await ic('destination', 'add', 'files', '--plugin', 'file-system', '--set', `destinationDirectory=${files}`)).code,
  ).toBe(0);
  expect(
    (
      await ic(
        'schedule',
        'add',
        'hourly',
        '--every',
        '1h',
        '--transfer',
        'main:files:session-data,session-recording,command-shell-recording',
      )
    ).code,
  ).toBe(0);
});
afterAll(async () => {
  await sim.stop();
});

describe('ic service (built binary)', () => {
  it('install/uninstall a systemd unit (dry run and into a directory); status says not installed / stopped', async () => {
    const units = join(home, 'units');
    const dry = await ic('service', 'install', '--dry-run');
    expect(dry.stdout).toMatch(/ExecStart=\S+ --initial-old-space-size=128 \S+ic\.js service run/);
    expect(dry.stdout).toContain(`Environment=IC_HOME=${home}`);
    expect(dry.stdout).toMatch(/^NoNewPrivileges=true$/m);
    expect(dry.stdout).toMatch(/^ProtectSystem=full$/m);
    // The account: --user, else the data directory's owner (it holds the 0600 key), root only when root owns it.
    expect((await ic('service', 'install', '--dry-run', '--user', 'svc-ic')).stdout).toMatch(/^User=svc-ic$/m);
    if (process.getuid!() === 0) {
      expect(dry.stdout).not.toMatch(/^User=/m);
      expect(dry.stderr).toMatch(/belongs to root, so the service runs as root/);
      await chown(home, 65534, 65534);
      try {
        const nobody = execFileSync('id', ['-nu', '65534'], { encoding: 'utf8' }).trim();
        expect((await ic('service', 'install', '--dry-run')).stdout).toMatch(new RegExp(`^User=${nobody}$`, 'm'));
      } finally {
        await chown(home, 0, 0);
      }
    } else expect(dry.stdout).toMatch(new RegExp(`^User=${userInfo().username}$`, 'm'));
    expect((await status()).service).toBe('not installed');
    // The seed's "Last Program Run": when ic last ran a command, and which (not the status command itself).
    expect((await ic('schedule', 'list')).code).toBe(0);
    const shown = await status();
    expect(shown.lastProgramRun).toEqual({ at: expect.any(String), command: 'ic schedule list' });
    expect(Date.now() - Date.parse(shown.lastProgramRun!.at)).toBeLessThan(60_000);
    expect((await ic('service', 'status', '--unit-dir', units)).stdout).toMatch(
      /^last program run: \S+Z \(ic service status\)$/m,
    );
    expect((await ic('service', 'install', '--unit-dir', units)).code).toBe(0);
    expect(await readFile(join(units, 'integration-client.service'), 'utf8')).toContain('KillSignal=SIGTERM');
    expect((await status()).service).toBe('stopped');
    expect((await ic('service', 'uninstall', '--unit-dir', units)).stdout).toMatch(/removed/);
    expect((await status()).service).toBe('not installed');
  });

  it('a service.json left by a killed service whose pid another program has now is not taken for a service', async () => {
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    const state = join(home, 'service.json');
    await writeFile(
      state,
      JSON.stringify({ pid: other.pid, startedAt: new Date().toISOString(), healthUrl: 'http://127.0.0.1:9', home }),
    );
    try {
      expect((await status()).service).not.toBe('running');
      const stop = await ic('service', 'stop');
      expect(stop.stdout).toMatch(/service: not running/);
      expect(other.exitCode).toBeNull(); // not signalled
    } finally {
      await rm(state, { force: true });
      other.kill();
    }
  });

  it('status says when a running service does not answer its /health (busy or hung)', async () => {
    // A process that is alive, and a health port that takes the connection but never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const stand = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'service', 'run'], { stdio: 'ignore' });
    const state = join(home, 'service.json');
    await writeFile(
      state,
      JSON.stringify({
        pid: stand.pid,
        startedAt: new Date().toISOString(),
        healthUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        home,
      }),
    );
    try {
      const text = await ic('service', 'status');
      expect(text.stdout).toMatch(/^service: running \(pid \d+/m);
      expect(text.stdout).toMatch(/^ {2}it did not answer http:\S+\/health within 2 s: busy or hung/m);
      expect(await status()).toMatchObject({ service: 'running', healthAnswered: false, runningNow: [] });
    } finally {
      await rm(state, { force: true });
      stand.kill();
      silent.close();
    }
  });

  it('catches up at start; SIGTERM mid-run exits cleanly keeping the cursor; a restart completes without duplicates', async () => {
    const closed = sim.closedSessions().length;
    const recordings = sim.closedSessions().reduce((n, s) => n + (s.hasRecording ? 1 : 0) + s.shellInstances, 0);
    const first = await startService();
    expect((await status()).service).toBe('running');
    // Let some sessions land, then stop the service in the middle of the run.
    await until('some files', async () => ((await readdir(files).catch(() => [])).length >= 5 ? true : undefined));
    // Under way, status says what the run has delivered so far and when its latest item came (slow or stuck?).
    const under = await ic('service', 'status', '--unit-dir', join(home, 'units'));
    expect(under.stdout).toMatch(
      /^running now: hourly since \S+Z \(\d+ s ago\): [\w-]+->files \d+ items?(, [\d.]+ [KM]iB)?; last item \d+ s ago$/m,
    );
    const [now] = (await status()).runningNow;
    expect(now!.schedule).toBe('hourly');
    expect(Object.values(now!.transfers)[0]!.items).toBeGreaterThanOrEqual(5);
    const scraped = await (await fetch(`${first.url}/metrics`)).text();
    expect(scraped).toMatch(/^ic_runs_in_progress 1$/m);
    expect(scraped).toMatch(/^ic_notification_mails_waiting 0$/m);
    first.child.kill('SIGTERM');
    const [code] = (await once(first.child, 'exit')) as [number];
    expect(code).toBe(0);
    const interrupted = (await status()).lastRun!;
    expect(interrupted.outcome).toBe('stopped');
    // The stop was asked for: warnings, no error line (every error line is mailed).
    const stoppedLog = await logLines(home, 'service');
    expect(stoppedLog.filter((l) => l.level >= 50)).toEqual([]);
    expect(stoppedLog.find((l) => l.msg === 'schedule run finished')).toMatchObject({ level: 40, outcome: 'stopped' });
    // Session data lands fast (up to 1000 sessions in flight); recordings come 4 at a time from a slow appliance, so
    // the stop finds some not yet started — and sessions in flight start no new download after it: those are left
    // for the next run.
    expect(await flvCount()).toBeLessThan(recordings);
    expect((await status()).service).not.toBe('running');

    // Old log files go while the service runs, not only when it starts (it runs for months): one dated 40 days
    // ago, written after the start, is gone once the run has finished.
    expect((await ic('settings', 'set', '--log-removal-days', '30')).code).toBe(0);
    // Another host's run (a shared settings database) moves main->files for a few more seconds: the restarted
    // service's catch-up run waits for it, and status says so.
    holdPair(home, 'main->files', 'elsewhere:1 run 7', 8);
    const second = await startService(SERVICE_NODE_FLAGS); // as the unit starts it
    await until('the run waiting for its pair', async () => {
      const text = (await ic('service', 'status')).stdout;
      return /^running now: hourly since .*: main->files waits for another run of its pair \(elsewhere:1 run 7\)$/m.test(
        text,
      )
        ? true
        : undefined;
    });
    const old = join(
      home,
      'logs',
      `service.${new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10)}.1.log`,
    );
    await writeFile(old, '');
    try {
      // Watched through the service's own /metrics: any `ic` command (status too) would remove the file itself.
      await until('a run finished', async () => {
        const metrics = await (await fetch(`${second.url}/metrics`)).text();
        return /ic_runs_total\{schedule="hourly",outcome="succeeded"\} 1/.test(metrics) ? true : undefined;
      });
      await until('the old log file removed', () => Promise.resolve(existsSync(old) ? undefined : true), 10_000);
      const done = await until('a succeeded run', async () => {
        const s = await status();
        return s.lastRun && s.lastRun.id > interrupted.id && s.lastRun.outcome ? s.lastRun : undefined;
      });
      expect(done.outcome).toBe('succeeded');
      expect(await xmlCount()).toBe(closed);
      expect(await flvCount()).toBe(recordings);
      const names = await readdir(files);
      expect(names.filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]); // no AppendNumber copies
      const health2 = async () =>
        (await (await fetch(`${second.url}/health`)).json()) as {
          status: string;
          schedules: { schedule: string; next?: string }[];
        };
      const health = await health2();
      expect(health.status).toBe('ok');
      expect(health.schedules).toEqual([{ schedule: 'hourly', next: expect.any(String) }]);
      // status asks the running service when each schedule fires next
      expect((await status()).schedules).toEqual([
        expect.objectContaining({ name: 'hourly', nextRun: health.schedules[0]!.next }),
      ]);
      const table = (await ic('service', 'status', '--unit-dir', join(home, 'units'))).stdout;
      expect(table).toMatch(/NEXT RUN/);
      expect(table).toContain(health.schedules[0]!.next!);
      const metrics = await (await fetch(`${second.url}/metrics`)).text();
      expect(metrics).toMatch(/ic_runs_total\{schedule="hourly",outcome="succeeded"\} 1/);
      expect(metrics).toMatch(/ic_items_delivered_total\{site="main",destination="files"\} \d+/);
      // The simulator's clock stands in 2024: lag is on the appliance's clock (a settle time, not two years), and
      // the clock difference is a metric of its own.
      const lag = Number(
        /ic_cursor_lag_seconds\{transfer="main->files",data_type="session-data"\} (-?\d+)/.exec(metrics)?.[1],
      );
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(3600);
      const offset = Number(/ic_site_clock_offset_seconds\{site="main"\} (-?\d+)/.exec(metrics)?.[1]);
      expect(Math.abs(offset - (sim.now - Date.now() / 1000))).toBeLessThan(600);
      const busy = await ic('schedule', 'run', 'hourly');
      expect([0, 1]).toContain(busy.code);
      // SIGHUP (a closed terminal, a manager's reload) re-reads the schedules; it does not end the service (Node's
      // default would).
      second.child.kill('SIGHUP');
      await until('the SIGHUP logged', async () =>
        /SIGHUP: the schedules are re-read now/.test((await ic('logs', '--service', '-n', '200')).stdout)
          ? true
          : undefined,
      );
      expect(second.child.exitCode).toBeNull();
      expect((await health2()).status).toBe('ok');
      // A second service on this data directory is refused; one elsewhere on a taken health port says so.
      const twice = await ic('service', 'run', '--health-port', '0');
      expect(twice.code).toBe(1);
      expect(twice.stderr).toMatch(/IC_ERR_SERVICE_RUNNING: a service already runs on \S+ \(pid \d+/);
      const elsewhere = await mkdtemp(join(tmpdir(), 'ic-svc-other-'));
      expect((await runIc(elsewhere, ['init'])).code).toBe(0);
      const port = new URL(second.url).port;
      const taken = await runIc(elsewhere, ['service', 'run', '--health-port', port]);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain(`IC_ERR_SERVICE_RUNNING: the health port 127.0.0.1:${port} is in use`);
      expect((await runIc(elsewhere, ['logs', '--service', '-n', '1'])).stdout).toMatch(
        /ERROR the service could not start \[IC_ERR_SERVICE_RUNNING: the health port/,
      ); // in its log (and so mailed), not only on stderr
      // The first start, without the unit's node flags, said so in its log; the second, with them, did not.
      const lines = await logLines(home, 'service');
      expect(lines.filter((l) => l.msg === 'service started')).toHaveLength(2);
      expect(lines.filter((l) => l.msg.startsWith('node was started without')).map((l) => l.missing)).toEqual([
        ['--initial-old-space-size=128'],
      ]);
    } finally {
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');
    }
    expect(await xmlCount()).toBe(closed);
  }, 180_000);

  it('start runs the service in the background and stop ends it; neither signals what is not the service', async () => {
    const units = join(home, 'units');
    const started = await ic('service', 'start', '--health-port', '0', '--unit-dir', units);
    expect(started.code).toBe(0);
    const pid = Number(
      /^service started \(pid (\d+)\); health http:\/\/127\.0\.0\.1:\d+\/health/m.exec(started.stdout)?.[1],
    );
    expect(await status()).toMatchObject({ service: 'running', pid });
    expect((await ic('service', 'start', '--health-port', '0', '--unit-dir', units)).stdout).toMatch(
      new RegExp(`^service already running on \\S+ \\(pid ${pid},`, 'm'),
    );
    const stopped = await ic('service', 'stop', '--json');
    expect(stopped.code).toBe(0);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ running: false, stopped: true, pid });
    expect(ended(pid)).toBe(true);
    expect((await status()).service).toBe('not installed');
    expect((await ic('service', 'stop')).stdout).toMatch(/^service: not running on /m);
    expect((await ic('service', 'stop', '--timeout', 'soon')).stderr).toMatch(/--timeout "soon": give seconds/);
    expect(await readFile(join(home, 'service.out'), 'utf8')).toMatch(/service running \(pid \d+\)[^]*service stopped/);

    // A service that cannot start (its health port is taken) is reported with what it said.
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const port = String((blocker.address() as AddressInfo).port);
      const refused = await ic('service', 'start', '--health-port', port, '--unit-dir', units);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        new RegExp(
          `IC_ERR_SERVICE_NOT_STARTED: the service exited at start \\(code 1\\): .*health port 127\\.0\\.0\\.1:${port} is in use`,
        ),
      );
    } finally {
      blocker.close();
    }
    // Installed as a systemd unit: systemd starts it.
    expect((await ic('service', 'install', '--unit-dir', units)).code).toBe(0);
    const viaSystemd = await ic('service', 'start', '--unit-dir', units);
    expect(viaSystemd.code).toBe(2);
    expect(viaSystemd.stderr).toMatch(/installed as a systemd unit .*systemctl start integration-client/);
    expect((await ic('service', 'uninstall', '--unit-dir', units)).code).toBe(0);
    // A stale service.json naming a live process that is not the service (here: this test's own) is not signalled.
    await writeFile(
      join(home, 'service.json'),
      JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), healthUrl: 'http://127.0.0.1:1', home }),
    );
    try {
      const stale = await ic('service', 'stop'); // its command line is not `ic service run`: not the service
      expect(stale.code).toBe(0);
      expect(stale.stdout).toMatch(/^service: not running on /m);
    } finally {
      await rm(join(home, 'service.json'));
    }
  }, 120_000);
});
