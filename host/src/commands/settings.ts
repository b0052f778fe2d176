import { copySettings, SettingsDb, SETTINGS_DB_ENV, writeSettingsLocation } from '@integration-client/core';
import { ConfigError } from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import { logDirectory, probeDirectory } from '../logs.js';
import { runningService } from '../service/state.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { maskPassword, printSettings, withApp, type HomeOptions } from './common.js';
import { opts } from './site.js';

interface SettingsOptions extends HomeOptions {
  logDirectory?: string;
  logRemovalDays?: string;
  keepLogs?: boolean;
  logLevel?: string;
  overlapSeconds?: string;
  settleSeconds?: string;
  maxTransfers?: string;
  maxPerSite?: string;
  sessionsInFlight?: string;
  downloads?: string;
  pluginCallTimeout?: string;
  pluginMemoryLimit?: string;
  pluginNice?: string;
  ledgerDays?: string;
  runHistoryDays?: string;
  giveUpHours?: string;
}

/** Refuses a log directory this user cannot create and write in (every command would log nowhere). */
function usableLogDirectory(dir: string): void {
  try {
    probeDirectory(dir, 0);
  } catch (err) {
    throw new ConfigError(
      `--log-directory ${dir} cannot be used (${(err as Error).message}); give a directory this user can create and write in`,
    );
  }
}

export function settingsCommands(ic: Command): void {
  const s = ic.command('settings').description("application settings (the seed's Application Settings)");
  s.command('set')
    .description('change application settings')
    .option(
      '--log-directory <dir>',
      'where the client and service logs go (default $IC_HOME/logs; a relative path is taken in $IC_HOME)',
    )
    .option('--log-removal-days <n>', 'remove log files older than this many days (default: keep them)')
    .option('--keep-logs', 'keep log files however old (undoes --log-removal-days)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
    .option('--overlap-seconds <n>', 'seconds re-read before each cursor')
    .option('--settle-seconds <n>', 'seconds before the appliance now left for the next run')
    .option('--max-transfers <n>', 'transfers running at once in this process (default 4)')
    .option('--max-per-site <n>', 'transfers running at once against one site (default 2)')
    .option('--sessions-in-flight <n>', 'sessions of a transfer handed to its destination at once (default 1000)')
    .option('--downloads <n>', 'recordings of a transfer downloaded at once (default 4)')
    .option(
      '--plugin-call-timeout <seconds>',
      'a plugin call running longer fails and a hung plugin is restarted (default 300)',
    )
    .option('--plugin-memory-limit <mb>', "heap limit of each destination's worker (default 512)")
    .option(
      '--plugin-nice <n>',
      "how much lower destination workers' CPU priority is than the host's (Linux nice, 0-19, default 10)",
    )
    .option(
      '--ledger-days <n>',
      'forget delivered items after this many days, at least 91: the appliance keeps sessions 90 days (default 120)',
    )
    .option('--run-history-days <n>', "keep runs this many days; each schedule's latest is kept (default 365)")
    .option(
      '--give-up-hours <n>',
      'an item failing with a retryable error in 3 runs over this many hours becomes a failed item, so its cursor moves on (default 24; 0: never)',
    )
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic settings set --log-removal-days 30 --log-level info')
    .action(async (o: SettingsOptions, cmd: Command) => {
      if (o.keepLogs && o.logRemovalDays !== undefined)
        throw new ConfigError('give --log-removal-days or --keep-logs, not both');
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        if (o.logDirectory !== undefined) usableLogDirectory(logDirectory(app.home, o.logDirectory));
        const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
        const stored = await app.db.application();
        if (o.keepLogs) delete stored.logRemovalDays; // back to keeping every log file
        const next = app.validator.applicationToStore({
          ...stored,
          ...(o.logDirectory !== undefined && { logDirectory: o.logDirectory }),
          ...(o.logRemovalDays !== undefined && { logRemovalDays: num(o.logRemovalDays) }),
          ...(o.logLevel !== undefined && { logLevel: o.logLevel }),
          ...(o.overlapSeconds !== undefined && { overlapSeconds: num(o.overlapSeconds) }),
          ...(o.settleSeconds !== undefined && { settleSeconds: num(o.settleSeconds) }),
          ...(o.maxTransfers !== undefined && { maxConcurrentTransfers: num(o.maxTransfers) }),
          ...(o.maxPerSite !== undefined && { maxConcurrentPerSite: num(o.maxPerSite) }),
          ...(o.sessionsInFlight !== undefined && { sessionsInFlight: num(o.sessionsInFlight) }),
          ...(o.downloads !== undefined && { downloadsPerTransfer: num(o.downloads) }),
          ...(o.pluginCallTimeout !== undefined && { pluginCallTimeoutSeconds: num(o.pluginCallTimeout) }),
          ...(o.pluginMemoryLimit !== undefined && { pluginMemoryLimitMb: num(o.pluginMemoryLimit) }),
          ...(o.pluginNice !== undefined && { pluginNice: num(o.pluginNice) }),
          ...(o.ledgerDays !== undefined && { ledgerDays: num(o.ledgerDays) }),
          ...(o.runHistoryDays !== undefined && { runHistoryDays: num(o.runHistoryDays) }),
          ...(o.giveUpHours !== undefined && { giveUpHours: num(o.giveUpHours) }),
        });
        await app.db.putApplication(next);
        if (o.json) out.json({ saved: true });
        else out.line('application settings saved');
        return EXIT.ok;
      });
    });
  s.command('show')
    .description('show the application settings in effect (defaults marked; SMTP password masked)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic settings show --json')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const stored = await app.db.application();
        const a = app.application; // stored, with the schema's defaults for the rest
        const shown = {
          settingsDatabase: app.settings.location,
          ...a,
          logDirectory: app.logDir,
          logRemovalDays: a.logRemovalDays ?? (o.json ? null : 'never: log files are kept'),
          ...(a.notification && { notification: maskPassword(a.notification) }),
        };
        // What grows with use, and whether the daily pruning (ledgerDays, runHistoryDays) keeps up.
        const held = await app.db.holdings();
        if (o.json) out.json({ ...shown, holdings: held });
        else {
          printSettings(shown, stored, ['settingsDatabase']);
          out.line(
            `\nthe settings database holds ${held.ledgerEntries} delivered-items ledger entries and ${held.runs} runs; ${held.lastPrunedAt ? `last pruned ${held.lastPrunedAt}` : 'not pruned yet'} (ic settings prune)`,
          );
        }
        return EXIT.ok;
      });
    });
  s.command('prune')
    .description(
      "remove now what goes once a day anyway: delivered-items ledger entries older than --ledger-days and runs older than --run-history-days (each schedule's latest is kept)",
    )
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic settings set --run-history-days 30 && ic settings prune')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const a = app.validator.application(await app.db.application()); // with the schema's defaults
        const days = { ledgerDays: a.ledgerDays!, runHistoryDays: a.runHistoryDays! };
        const pruned = (await app.db.prune({ ...days, everyMs: 0 }))!;
        app.log.info({ ...pruned, ...days }, 'settings database pruned (ic settings prune)');
        if (o.json) out.json({ ...pruned, ...days });
        else
          out.line(
            `removed ${pruned.delivered} delivered-items ledger entries older than ${days.ledgerDays} days (with ${pruned.failedItems} failed-item attempts they had closed) and ${pruned.runs} runs older than ${days.runHistoryDays} days`,
          );
        return EXIT.ok;
      });
    });
  s.command('migrate')
    .description(
      'copy everything (sites, destinations, schedules, cursors, the delivered-items ledger, runs, application settings) to another settings database, check it, and switch to it',
    )
    .requiredOption(
      '--to <connection>',
      'the new settings database: postgres://user:pw@host:5432/db, mssql://…, Server=…;Database=…; or sqlite:<file>',
    )
    .option('--replace', 'overwrite settings the target database already holds')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `\nExamples:\n  ic settings migrate --to postgres://ic:secret@db.example.com:5432/ic_settings\n  ic settings migrate --to sqlite:$IC_HOME/settings.db   (back to the embedded default)\nStop the service first. The old database is left as it was; remove it when you no longer need it.`,
    )
    .action(async (o: HomeOptions & { to: string; replace?: boolean }, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const service = runningService(app.home);
        if (service)
          throw new ConfigError(
            `the service is running (pid ${service.pid}) on the current settings database; stop it (systemctl stop integration-client), migrate, then start it`,
          );
        const target = await SettingsDb.open(o.to, app.box);
        let report;
        try {
          report = await copySettings(app.db, target, {
            replace: o.replace,
            onTable: (table, rows) => {
              if (!o.json) out.line(`  ${table.padEnd(18)} ${rows} rows copied`);
            },
          });
        } finally {
          await target.close();
        }
        const fromEnv = app.settings.source === 'env';
        const now = fromEnv ? undefined : writeSettingsLocation(app.home, app.box, o.to);
        if (o.json) out.json({ ...report, switched: !fromEnv });
        else {
          out.line(`copied ${report.from} → ${report.to}`);
          out.line(
            fromEnv
              ? `the settings database comes from ${SETTINGS_DB_ENV}: set it to the new connection to switch`
              : `switched: ${app.home} now uses ${now!.location}; the old database was left as it was`,
          );
        }
        return EXIT.ok;
      });
    });
}
