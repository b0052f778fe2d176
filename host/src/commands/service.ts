import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  hasSettings,
  missingServiceNodeFlags,
  Scheduler,
  SERVICE_NODE_FLAGS,
  type RunProgress,
} from '@integration-client/core';
import { ConfigError, IcError, makeDirectory } from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import { icHome, openApp, scheduleRunner } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { keepHouse } from '../housekeeping.js';
import { lastCommand } from '../logs.js';
import { out } from '../output.js';
import { ServiceMetrics, startHealthServer } from '../service/health-server.js';
import { alive, runningService, stateFile, type ServiceState } from '../service/state.js';
import { fmtBytes, table, withApp, type HomeOptions } from './common.js';
import { opts } from './site.js';

const UNIT = 'integration-client.service';
/** The `ic` binary, as the unit and `ic service start` run it. */
const IC_JS = resolve(fileURLToPath(new URL('../../bin/ic.js', import.meta.url)));

/**
 * The unit. `user`: the account the service runs as (`User=`); without one it runs as root. NoNewPrivileges, and
 * ProtectSystem=full (/usr, /boot, /etc read-only) unless the data directory is under one of those; a destination
 * under them needs that line removed, which the unit's comment says.
 */
export function unitText(home: string, user?: string): string {
  return `[Unit]
Description=BeyondTrust Integration Client scheduler
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
${user ? `User=${user}\n` : ''}Environment=IC_HOME=${home}
ExecStart=${[process.execPath, ...SERVICE_NODE_FLAGS, IC_JS].join(' ')} service run
Restart=on-failure
RestartSec=10
KillSignal=SIGTERM
TimeoutStopSec=120
NoNewPrivileges=true
${
  /^\/(usr|boot|etc)(\/|$)/.test(home)
    ? ''
    : '# /usr, /boot and /etc read-only to the service: remove if a destination writes under them\nProtectSystem=full\n'
}
[Install]
WantedBy=multi-user.target
`;
}

interface Health {
  pid?: number;
  /** When it fires each schedule next. */
  schedules?: { schedule: string; next?: string }[];
  /** The runs under way. */
  runs?: RunProgress[];
}

/** The running service's /health answer (undefined if it does not answer within 2 s). */
async function health(healthUrl: string): Promise<Health | undefined> {
  try {
    const res = await fetch(`${healthUrl}/health`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as Health;
  } catch {
    return undefined;
  }
}

/** A run under way in words: `s1 since …: main->files 120 items, 4.1 MiB · main->db 200 items; last item 3 s ago`. */
function runLine(r: RunProgress, now = Date.now()): string {
  const ago = (iso: string) => `${Math.round((now - Date.parse(iso)) / 1000)} s ago`;
  const each = Object.entries(r.transfers).map(([t, n]) =>
    n.waitingFor !== undefined
      ? `${t} waits for another run of its pair (${n.waitingFor})`
      : `${t} ${n.items} item${n.items === 1 ? '' : 's'}${n.bytes ? `, ${fmtBytes(n.bytes)}` : ''}`,
  );
  return `${r.schedule} since ${r.startedAt} (${ago(r.startedAt)}): ${each.length ? each.join(' · ') : 'nothing delivered yet'}${r.lastDeliveryAt ? `; last item ${ago(r.lastDeliveryAt)}` : ''}`;
}

/** The name of the account owning `path` (its uid when it has no name); undefined for root. */
function ownerName(path: string): string | undefined {
  const { uid } = statSync(path);
  if (uid === 0) return undefined;
  try {
    return execFileSync('id', ['-nu', String(uid)], { encoding: 'utf8' }).trim() || String(uid);
  } catch {
    return String(uid); // systemd takes a numeric User= too
  }
}

/** How long `ic service start` waits for the service to serve. */
const START_WAIT_MS = 30_000;

/**
 * `ic service start`: `ic service run` as a detached background process (standard output and error appended to
 * `service.out` in the data directory), once it serves. A service installed as a systemd unit is started by
 * systemd instead (which restarts it and stops it with the machine).
 */
async function startDetached(
  home: string,
  o: { healthPort: string; unitDir: string; json?: boolean },
): Promise<number> {
  const running = runningService(home);
  if (running) {
    if (o.json) out.json({ running: true, pid: running.pid, healthUrl: running.healthUrl, started: false });
    else out.line(`service already running on ${home} (pid ${running.pid}, ${running.healthUrl}/health)`);
    return EXIT.ok;
  }
  const unit = join(o.unitDir, UNIT);
  if (existsSync(unit))
    throw new ConfigError(
      `the service is installed as a systemd unit (${unit}): start it with \`systemctl start ${UNIT.replace(/\.service$/, '')}\`, so that systemd restarts it and stops it with the machine`,
    );
  if (!hasSettings(home)) throw new ConfigError(`no settings database in ${home}; run \`ic init\` first`);
  const outFile = join(home, 'service.out');
  const fd = openSync(outFile, 'a', 0o600);
  const from = statSync(outFile).size;
  const child = spawn(
    process.execPath,
    [...SERVICE_NODE_FLAGS, IC_JS, 'service', 'run', '--health-port', o.healthPort],
    {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, IC_HOME: home },
    },
  );
  closeSync(fd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + START_WAIT_MS;
  for (;;) {
    const state = runningService(home);
    if (state && state.pid === child.pid) {
      if (o.json) out.json({ running: true, pid: state.pid, healthUrl: state.healthUrl, started: true });
      else
        out.line(
          `service started (pid ${state.pid}); health ${state.healthUrl}/health; log: ic logs --service; stop it with: ic service stop`,
        );
      return EXIT.ok;
    }
    if (exited !== undefined || Date.now() > deadline) {
      const said = readFileSync(outFile, 'utf8').slice(from).trim();
      throw new IcError(
        'IC_ERR_SERVICE_NOT_STARTED',
        exited !== undefined
          ? `the service exited at start (code ${exited})${said ? `: ${said}` : ''}`
          : `the service (pid ${child.pid}) did not serve within ${START_WAIT_MS / 1000} s; see ${outFile} and ic logs --service`,
      );
    }
    await delay(100);
  }
}

/** `ic service stop`: SIGTERM to the service of this data directory, then waits until its process has ended. */
async function stopService(home: string, o: { timeout: string; json?: boolean }): Promise<number> {
  const limit = Number(o.timeout) * 1000;
  if (!(limit > 0)) throw new ConfigError(`--timeout ${JSON.stringify(o.timeout)}: give seconds, e.g. 130`);
  const state = runningService(home);
  if (!state) {
    if (o.json) out.json({ running: false, stopped: false });
    else out.line(`service: not running on ${home}`);
    return EXIT.ok;
  }
  // service.json names a pid that may since belong to another program: only a service that answers on its health
  // URL with that pid is signalled.
  if ((await health(state.healthUrl))?.pid !== state.pid)
    throw new IcError(
      'IC_ERR_SERVICE_NOT_STOPPED',
      `${stateFile(home)} names pid ${state.pid}, but no service answers with it on ${state.healthUrl}; nothing was signalled. If \`ps -p ${state.pid}\` shows \`ic service run\`, stop it with kill ${state.pid}`,
    );
  const t0 = Date.now();
  process.kill(state.pid, 'SIGTERM');
  if (!o.json) process.stderr.write(`stopping pid ${state.pid}: deliveries under way finish first…\n`);
  while (alive(state.pid)) {
    if (Date.now() - t0 > limit)
      throw new IcError(
        'IC_ERR_SERVICE_NOT_STOPPED',
        `the service (pid ${state.pid}) is still finishing after ${o.timeout} s; wait, or kill -9 ${state.pid} (nothing is lost: its cursors stay behind what it has not delivered)`,
      );
    await delay(100);
  }
  const seconds = Math.round((Date.now() - t0) / 100) / 10;
  if (o.json) out.json({ running: false, stopped: true, pid: state.pid, seconds });
  else out.line(`service stopped (pid ${state.pid}, ${seconds} s)`);
  return EXIT.ok;
}

export function serviceCommands(ic: Command): void {
  const s = ic.command('service').description('the scheduler service');
  s.command('run')
    .description('run the scheduler in the foreground (what a service manager starts); SIGTERM stops it cleanly')
    .option('--health-port <port>', '/health and /metrics on 127.0.0.1 (0 = any free port)', '9187')
    .addHelpText('after', '\nExample:\n  IC_HOME=/var/lib/integration-client ic service run --health-port 9187')
    .action(async (o: HomeOptions & { healthPort: string }, cmd: Command) => {
      const home = icHome(opts(cmd, o).home);
      const other = runningService(home);
      if (other)
        throw new IcError(
          'IC_ERR_SERVICE_RUNNING',
          `a service already runs on ${home} (pid ${other.pid}, started ${other.startedAt}); run one service per data directory: stop it first (systemctl stop ${UNIT.replace(/\.service$/, '')}, or kill ${other.pid})`,
        );
      const app = await openApp(home, { log: 'service' });
      const metrics = new ServiceMetrics(() => ({
        mailsWaiting: app.notifier?.waiting ?? 0,
        runsInProgress: scheduler.running.length,
      }));
      // A service runs for years: old log files, ledger entries and runs go at start, after every run and hourly.
      const sweep = () => void keepHouse(app);
      sweep();
      const sweeper = setInterval(sweep, 3_600_000).unref();
      const scheduler = new Scheduler(app.db, scheduleRunner(app), app.log, {
        onRun: (run) => {
          metrics.record(run);
          sweep();
        },
      });
      const startedAt = new Date().toISOString();
      const server = await startHealthServer(Number(o.healthPort), metrics, app.db, scheduler, startedAt).catch(
        async (err: NodeJS.ErrnoException) => {
          const e =
            err.code === 'EADDRINUSE'
              ? new IcError(
                  'IC_ERR_SERVICE_RUNNING',
                  `the health port 127.0.0.1:${o.healthPort} is in use (a service on another data directory?); give this one another: ic service run --health-port <port> (0: any free port)`,
                )
              : err;
          app.log.error({ err: e }, 'the service could not start'); // in the service log (and mailed), not only on stderr
          await app.close();
          throw e;
        },
      );
      const healthUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      writeFileSync(
        stateFile(home),
        JSON.stringify({ pid: process.pid, startedAt, healthUrl, home } satisfies ServiceState),
      );
      await scheduler.start();
      app.log.info({ home, healthUrl, schedules: scheduler.nextRuns() }, 'service started');
      const missing = missingServiceNodeFlags();
      if (missing.length)
        app.log.info(
          { missing },
          `node was started without ${missing.join(' ')}: recording downloads may run about a third slower; the unit of \`ic service install\` passes it (ADR 011)`,
        );
      out.line(
        `service running (pid ${process.pid}); health ${healthUrl}/health, metrics ${healthUrl}/metrics; log: ic logs --service (${app.logDir})`,
      );
      await new Promise<void>((done) => {
        const stop = (signal: string) => {
          app.log.info({ signal, running: scheduler.running }, 'stopping: runs under way finish their deliveries');
          void scheduler
            .stop()
            .then(() => new Promise((r) => server.close(r)))
            .then(() => done());
        };
        process.once('SIGTERM', () => stop('SIGTERM')).once('SIGINT', () => stop('SIGINT'));
        // SIGHUP (a closed terminal, `kill -HUP`, a manager's reload) ended the process on the spot, as Node does by
        // default; a daemon re-reads its configuration instead: the schedules now, not at the next reload.
        process.on('SIGHUP', () => {
          app.log.info('SIGHUP: the schedules are re-read now');
          void scheduler
            .sync()
            .catch((err: unknown) => app.log.warn({ err }, 'SIGHUP: the schedules could not be re-read'));
        });
      });
      clearInterval(sweeper);
      rmSync(stateFile(home), { force: true });
      app.log.info('service stopped');
      await app.close();
      out.line('service stopped');
      process.exitCode = EXIT.ok;
    });
  s.command('start')
    .description(
      'start `ic service run` in the background (without a service manager; a systemd unit: systemctl start)',
    )
    .option('--health-port <port>', '/health and /metrics on 127.0.0.1 (0 = any free port)', '9187')
    .option('--unit-dir <dir>', 'where an installed unit would be', '/etc/systemd/system')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `\nExample:\n  ic service start && ic service status\nIts standard output and error go to service.out in the data directory; its log: ic logs --service.`,
    )
    .action(async (o: HomeOptions & { healthPort: string; unitDir: string; json?: boolean }, cmd: Command) => {
      process.exitCode = await startDetached(icHome(opts(cmd, o).home), o);
    });
  s.command('stop')
    .description('stop the running service (SIGTERM): deliveries under way finish, then it exits')
    .option('--timeout <seconds>', 'how long to wait for it to finish', '130')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExample:\n  ic service stop\nExit code: 0 stopped or not running, 1 still running after --timeout.',
    )
    .action(async (o: HomeOptions & { timeout: string; json?: boolean }, cmd: Command) => {
      process.exitCode = await stopService(icHome(opts(cmd, o).home), o);
    });
  s.command('install')
    .description(`write a systemd unit (${UNIT}) that runs \`ic service run\``)
    .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
    .option(
      '--user <name>',
      'the account the service runs as (default: the owner of the data directory, which holds its 0600 secret key; root if root owns it)',
    )
    .option('--dry-run', 'print the unit instead of writing it')
    .addHelpText(
      'after',
      '\nExample:\n  sudo ic service install --home /var/lib/integration-client --user integration-client && sudo systemctl enable --now integration-client',
    )
    .action(async (o: HomeOptions & { unitDir: string; user?: string; dryRun?: boolean }, cmd: Command) => {
      const home = icHome(opts(cmd, o).home);
      if (!hasSettings(home)) throw new ConfigError(`no settings database in ${home}; run \`ic init\` first`);
      const user = o.user ?? ownerName(home);
      const text = unitText(home, user);
      if (!user)
        process.stderr.write(
          `note: ${home} belongs to root, so the service runs as root; give the data directory to a service account (chown -R) or pass --user\n`,
        );
      if (o.dryRun) out.line(text);
      else {
        makeDirectory(o.unitDir);
        await writeFile(join(o.unitDir, UNIT), text, { mode: 0o644 });
        out.line(
          `wrote ${join(o.unitDir, UNIT)}; now: systemctl daemon-reload && systemctl enable --now integration-client`,
        );
      }
      process.exitCode = EXIT.ok;
    });
  s.command('uninstall')
    .description('remove the systemd unit')
    .option('--unit-dir <dir>', 'where the unit is', '/etc/systemd/system')
    .option('--dry-run', 'say what would be removed')
    .addHelpText('after', '\nExample:\n  sudo systemctl disable --now integration-client && sudo ic service uninstall')
    .action((o: { unitDir: string; dryRun?: boolean }) => {
      const file = join(o.unitDir, UNIT);
      if (!existsSync(file)) out.line(`not installed (${file} does not exist)`);
      else if (o.dryRun) out.line(`would remove ${file}`);
      else {
        rmSync(file);
        out.line(`removed ${file}; run systemctl daemon-reload`);
      }
      process.exitCode = EXIT.ok;
    });
  s.command('status')
    .description(
      'running / stopped / not installed, the last run, and per schedule its period, transfers, last outcome and (while running) next run',
    )
    .option('--unit-dir <dir>', 'where the unit is', '/etc/systemd/system')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic service status --json')
    .action(async (o: HomeOptions & { unitDir: string }, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const running = runningService(app.home);
        const installed = existsSync(join(o.unitDir, UNIT));
        const lastRun = (await app.db.runs(undefined, 1))[0];
        const answer = running ? await health(running.healthUrl) : undefined;
        const next = new Map((answer?.schedules ?? []).flatMap((x) => (x.next ? [[x.schedule, x.next] as const] : [])));
        const schedules = await Promise.all(
          (await app.db.schedules()).map(async (x) => {
            const last = (await app.db.runs(x.name, 1))[0];
            return {
              name: x.name,
              period: x.period,
              timeOfDay: x.timeOfDay,
              enabled: x.enabled !== false,
              transfers: x.transfers.length,
              lastRun: last?.startedAt,
              outcome: last?.outcome,
              nextRun: next.get(x.name),
            };
          }),
        );
        const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
        const failedItems = total(await app.db.failedItemCounts());
        const retryingItems = total(await app.db.retryingCounts());
        const status = {
          service: running ? 'running' : installed ? 'stopped' : 'not installed',
          pid: running?.pid,
          healthUrl: running?.healthUrl,
          lastProgramRun: lastCommand(app.logDir),
          ...(running && { healthAnswered: answer !== undefined }),
          runningNow: answer?.runs ?? [],
          lastRun,
          failedItems,
          retryingItems,
          schedules,
        };
        if (o.json) out.json(status);
        else {
          out.line(`service: ${status.service}${running ? ` (pid ${running.pid}, ${running.healthUrl}/health)` : ''}`);
          if (running && !answer)
            out.line(
              `  it did not answer ${running.healthUrl}/health within 2 s: busy or hung (ic logs --service; a hung one: ic service stop)`,
            );
          const program = status.lastProgramRun;
          out.line(`last program run: ${program ? `${program.at} (${program.command})` : 'never'}`);
          for (const r of status.runningNow) out.line(`running now: ${runLine(r)}`);
          out.line(
            `last schedule run: ${lastRun ? `${lastRun.schedule} ${lastRun.startedAt} ${lastRun.outcome ?? 'running'}` : 'never'}`,
          );
          // Why it did not succeed, so that an operator sees it here (the run keeps its first error).
          if (lastRun?.error && lastRun.outcome !== 'succeeded')
            out.line(`  ${lastRun.error} (ic schedule show ${lastRun.schedule})`);
          if (failedItems) out.line(`failed items: ${failedItems} open (ic failed list)`);
          if (retryingItems) out.line(`items still retried, holding a cursor back: ${retryingItems} (ic failed list)`);
          if (schedules.length)
            out.line(
              table([
                ['SCHEDULE', 'EVERY', 'AT', 'TRANSFERS', 'LAST RUN', 'OUTCOME', 'NEXT RUN'],
                ...schedules.map((x) => [
                  x.name,
                  x.period,
                  x.timeOfDay ?? '',
                  String(x.transfers),
                  x.lastRun ?? 'never',
                  x.outcome ?? (status.runningNow.some((r) => r.schedule === x.name) ? 'running' : ''),
                  x.nextRun ?? (!x.enabled ? 'disabled' : running ? '' : '(service not running)'),
                ]),
              ]),
            );
        }
        return EXIT.ok;
      });
    });
}
