import { periodMinutes, transferId } from '@integration-client/core';
import { ConfigError } from '@integration-client/plugin-sdk';
import type { ScheduleSettings } from '@integration-client/schemas';
import type { Command } from 'commander';
import { scheduleRunner, type App } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { keepHouse } from '../housekeeping.js';
import { out } from '../output.js';
import { DeliveryProgress, sayWaiting } from '../progress.js';
import { collect, fmtBytes, table, withApp, type HomeOptions } from './common.js';
import { checkScheduleRouting } from './destination.js';
import { opts } from './site.js';

interface ScheduleOptions extends HomeOptions {
  every?: string;
  /** false: `--no-at` (edit), the time of day cleared. */
  at?: string | false;
  transfer?: string[];
  disabled?: boolean;
  /** `--enabled` (edit): switched back on. */
  enabled?: boolean;
}

/** `site:destination:type,type` → a transfer. */
function parseTransfer(text: string): ScheduleSettings['transfers'][number] {
  const [site, destination, types, ...rest] = text.split(':');
  if (!site || !destination || !types || rest.length)
    throw new ConfigError(
      `--transfer ${JSON.stringify(text)} must look like site:destination:type[,type…], e.g. main:files:session-data,session-recording`,
    );
  return { site, destination, dataTypes: types.split(',') as ScheduleSettings['transfers'][number]['dataTypes'] };
}

async function save(app: App, name: string, o: ScheduleOptions, base?: ScheduleSettings): Promise<number> {
  if (o.enabled && o.disabled) throw new ConfigError('--enabled and --disabled contradict each other; give one');
  const { timeOfDay, ...kept } = base ?? ({} as Partial<ScheduleSettings>);
  // The validator's own rule (whole days, so 48h counts), asked first to say how to clear the inherited time.
  const minutes = o.every === undefined ? NaN : periodMinutes(o.every);
  if (timeOfDay !== undefined && o.at === undefined && minutes % (24 * 60) !== 0 && Number.isFinite(minutes))
    throw new ConfigError(
      `schedule ${JSON.stringify(name)} runs at ${timeOfDay}, which only whole-day periods have; add --no-at to run every ${o.every}`,
    );
  const schedule = app.validator.schedule({
    ...kept,
    ...(o.at !== false && timeOfDay !== undefined && { timeOfDay }),
    name,
    ...(o.every !== undefined && { period: o.every }),
    ...(typeof o.at === 'string' && { timeOfDay: o.at }),
    ...(o.disabled && { enabled: false }),
    ...(o.enabled && { enabled: true }),
    ...(o.transfer?.length && { transfers: o.transfer.map(parseTransfer) }),
  });
  for (const t of schedule.transfers) await app.db.site(t.site);
  await checkScheduleRouting(app, schedule);
  await app.db.putSchedule(schedule);
  const shared = sharedCursors(schedule, await app.db.schedules());
  if (o.json) out.json({ saved: name, ...(shared.length && { sharedCursors: shared }) });
  else {
    out.line(
      `schedule ${JSON.stringify(name)} saved: every ${schedule.period}${schedule.timeOfDay ? ` at ${schedule.timeOfDay}` : ''}, ${schedule.transfers.length} transfer(s)${schedule.enabled === false ? ', disabled (switch it on with `ic schedule edit ' + name + ' --enabled`)' : ''}`,
    );
    for (const s of shared)
      out.line(
        `note: ${s.transfer} ${s.dataTypes.join(',')} is also moved by schedule ${JSON.stringify(s.schedule)}: the two share its cursor (a cursor belongs to the site → destination pair), so each run goes on from where either left off (when both are due, one waits for the other)`,
      );
  }
  return EXIT.ok;
}

/** The data types of `schedule`'s transfers that other schedules move too (they share those cursors). */
function sharedCursors(schedule: ScheduleSettings, all: readonly ScheduleSettings[]) {
  const shared: { transfer: string; dataTypes: string[]; schedule: string }[] = [];
  for (const t of schedule.transfers)
    for (const other of all)
      if (other.name !== schedule.name) {
        const theirs = new Set(
          other.transfers
            .filter((u) => u.site === t.site && u.destination === t.destination)
            .flatMap((u) => u.dataTypes),
        );
        const both = t.dataTypes.filter((op) => op !== 'site-backup' && theirs.has(op)); // a backup has no cursor
        if (both.length)
          shared.push({ transfer: transferId(t.site, t.destination), dataTypes: both, schedule: other.name });
      }
  return shared;
}

/** The cursor of every transfer and data type of a schedule (site backups have none: one is taken per run). */
async function cursorsOf(app: App, schedule: ScheduleSettings) {
  const stored = await app.db.cursors();
  return schedule.transfers.flatMap((t) => {
    const transfer = transferId(t.site, t.destination);
    return t.dataTypes
      .filter((op) => op !== 'site-backup')
      .map((dataType) => {
        const c = stored.find((x) => x.transfer === transfer && x.dataType === dataType);
        return {
          transfer,
          dataType,
          ...(c && { position: c.position, at: new Date(c.position * 1000).toISOString(), updatedAt: c.updatedAt }),
        };
      });
  });
}

export function scheduleCommands(ic: Command): void {
  const s = ic
    .command('schedule')
    .description("schedules: a period and the transfers that run together (the seed's Schedule)");
  const fields = (c: Command) =>
    c
      .option('--every <period>', 'how often: 1m … 7d (minutes m, hours h, days d)')
      .option('--at <HH:MM>', 'time of day (host local time), for periods in whole days')
      .option('--transfer <site:destination:types>', 'a transfer; data types comma-separated (repeatable)', collect)
      .option('--disabled', 'save it switched off')
      .option('--json', 'print JSON');
  fields(s.command('add <name>').description('add a schedule'))
    .addHelpText(
      'after',
      '\nExample:\n  ic schedule add nightly --every 1d --at 02:00 \\\n    --transfer main:files:session-data,session-recording,site-backup \\\n    --transfer main:archive:session-data,system-information',
    )
    .action(async (name: string, o: ScheduleOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        if ((await app.db.schedules()).some((x) => x.name === name))
          throw new ConfigError(`schedule ${JSON.stringify(name)} exists; use \`ic schedule edit\``);
        return save(app, name, o);
      });
    });
  fields(s.command('edit <name>').description('change a schedule (--transfer replaces all transfers)'))
    .option('--no-at', 'clear the time of day (needed to go from whole days to hours or minutes)')
    .option('--enabled', 'switch it back on')
    .addHelpText(
      'after',
      '\nExamples:\n  ic schedule edit nightly --every 12h --no-at\n  ic schedule edit nightly --enabled',
    )
    .action(async (name: string, o: ScheduleOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => save(app, name, o, await app.db.schedule(name)));
    });
  s.command('list')
    .description('list schedules with their last run')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic schedule list')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const all = await Promise.all(
          (await app.db.schedules()).map(async (x) => ({ ...x, lastRun: (await app.db.runs(x.name, 1))[0] })),
        );
        if (o.json) out.json(all);
        else if (!all.length) out.line('no schedules; add one with `ic schedule add`');
        else
          out.line(
            table([
              ['NAME', 'EVERY', 'AT', 'TRANSFERS', 'ENABLED', 'LAST RUN', 'OUTCOME'],
              ...all.map((x) => [
                x.name,
                x.period,
                x.timeOfDay ?? '',
                String(x.transfers.length),
                x.enabled === false ? 'no' : 'yes',
                x.lastRun?.startedAt ?? 'never',
                x.lastRun?.outcome ?? '',
              ]),
            ]),
          );
        return EXIT.ok;
      });
    });
  s.command('show <name>')
    .description('show a schedule, its transfers and recent runs')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic schedule show nightly')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const x = await app.db.schedule(name);
        const runs = await app.db.runs(name, 5);
        const cursors = await cursorsOf(app, x);
        // Open failed items of its destinations (they are kept per destination and item, not per schedule).
        const counts = await app.db.failedItemCounts();
        const failedItems = Object.fromEntries(
          [...new Set(x.transfers.map((t) => t.destination))].filter((d) => counts[d]).map((d) => [d, counts[d]!]),
        );
        // Items its transfers still retry every run (each holds its data type's cursor back until given up on).
        const hosts = new Map((await app.db.sites()).map((site) => [site.name, site.host]));
        const stuck = await app.db.retryingItems();
        const retrying: Record<string, number> = {};
        for (const t of x.transfers) {
          const n = stuck.filter((r) => r.destination === t.destination && r.host === hosts.get(t.site)).length;
          if (n) retrying[transferId(t.site, t.destination)] = n;
        }
        if (o.json) out.json({ ...x, periodMinutes: periodMinutes(x.period), cursors, runs, failedItems, retrying });
        else {
          out.line(
            `${x.name}: every ${x.period}${x.timeOfDay ? ` at ${x.timeOfDay}` : ''}${x.enabled === false ? ' (disabled)' : ''}`,
          );
          out.line(
            table([
              ['SITE', 'DESTINATION', 'DATA TYPES'],
              ...x.transfers.map((t) => [t.site, t.destination, t.dataTypes.join(',')]),
            ]),
          );
          if (cursors.length) {
            out.line(`\ncursors (on the appliance's clock; each run re-reads an overlap before them):`);
            out.line(
              table(
                cursors.map((c) => [
                  `  ${c.transfer}`,
                  c.dataType,
                  c.at ?? 'none yet: the first run takes everything the appliance keeps',
                  c.updatedAt ? `moved ${c.updatedAt}` : '',
                ]),
              ),
            );
          }
          if (runs.length) out.line('\nrecent runs:');
          for (const r of runs) {
            // The non-zero counts in words, bytes readable: `delivered 940, 81.8 MiB`, `retryable 4`.
            const counts = Object.entries(r.counts ?? {})
              .filter(([, n]) => n)
              .map(([k, n]) => (k === 'bytes' ? fmtBytes(n) : `${k} ${n}`));
            out.line(
              `  run ${r.id}  ${r.startedAt}  ${r.outcome ?? 'running'}${counts.length ? `  ${counts.join(', ')}` : ''}${r.error ? `\n    ${r.error}` : ''}`,
            );
          }
          for (const [d, n] of Object.entries(failedItems))
            out.line(`\nfailed items of ${d}: ${n} open (ic failed list --destination ${d})`);
          for (const [id, n] of Object.entries(retrying)) {
            const { destination } = x.transfers.find((t) => transferId(t.site, t.destination) === id)!;
            out.line(
              `\nstill retried by ${id}: ${n} item(s), holding a cursor back until given up on (ic failed list --destination ${destination})`,
            );
          }
        }
        return EXIT.ok;
      });
    });
  s.command('remove <name>')
    .description('remove a schedule (its cursors stay with the site/destination pairs)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic schedule remove nightly')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        await app.db.schedule(name);
        await app.db.removeSchedule(name);
        if (o.json) out.json({ removed: name });
        else out.line(`schedule ${JSON.stringify(name)} removed`);
        return EXIT.ok;
      });
    });
  s.command('run <name>')
    .description('run a schedule now, once (cursors move as on a scheduled run)')
    .option('--json', 'print the outcome as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  ic schedule run nightly\nExit code: 0 succeeded, 1 partly failed, failed or stopped (Ctrl-C).',
    )
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const ac = new AbortController();
        // The first signal stops the run cleanly and says so (the deliveries under way can take a while); a second
        // one, with no listener left, ends the process at once — safe too, as after a crash.
        const stop = (signal: NodeJS.Signals) => {
          process.stderr.write(
            `\n${signal}: stopping: the deliveries under way finish and each cursor stays before what was not delivered; ${signal === 'SIGINT' ? 'Ctrl-C' : signal} again ends it at once (nothing is lost either way)\n`,
          );
          ac.abort(new Error('interrupted'));
        };
        process.once('SIGINT', stop).once('SIGTERM', stop);
        const progress = o.json ? undefined : new DeliveryProgress();
        let run;
        try {
          run = await scheduleRunner(app).run(name, ac.signal, progress?.listener, sayWaiting);
        } finally {
          progress?.end();
        }
        await keepHouse(app);
        if (o.json) out.json(run);
        else {
          // A run that failed before any transfer started (a site's CA file, a destination that cannot open) has no rows.
          if (run.transfers.length)
            out.line(
              table([
                ['TRANSFER', 'DELIVERED', 'SKIPPED', 'OPEN', 'FAILED', 'RETRY', 'BYTES'],
                ...run.transfers.map((t) => [
                  t.transfer,
                  String(t.delivered),
                  String(t.skipped),
                  String(t.deferred),
                  String(t.failed),
                  String(t.retryable),
                  fmtBytes(t.bytes),
                ]),
              ]),
            );
          out.line(
            `${run.transfers.length ? '\n' : ''}run ${run.runId} ${run.outcome} in ${run.seconds.toFixed(1)} s${run.error ? `: ${run.error}` : ''}`,
          );
          if (run.outcome === 'stopped')
            out.line(`nothing is lost: the next run goes on from where this one stopped (ic schedule run ${name})`);
          else if (run.outcome !== 'succeeded') out.line(`details: ic logs (${app.logDir})`);
          for (const [destination, n] of Object.entries(run.pluginRestarts))
            out.line(
              `destination ${destination}: its plugin crashed or stopped answering ${n === 1 ? 'once' : `${n} times`} and was restarted; what it had in hand is delivered again (the error is in ic logs)`,
            );
          const failed = run.transfers.reduce((n, t) => n + t.failed, 0);
          if (failed)
            out.line(
              `${failed} item(s) failed for good, the cursor moved on without them: ic failed list (ic failed retry delivers them once the cause is fixed)`,
            );
        }
        return run.outcome === 'succeeded' ? EXIT.ok : EXIT.failed;
      });
    });
}
