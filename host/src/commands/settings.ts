import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { maskPassword, withApp, type HomeOptions } from './common.js';
import { opts } from './site.js';

interface SettingsOptions extends HomeOptions {
  logDirectory?: string;
  logRemovalDays?: string;
  logLevel?: string;
  overlapSeconds?: string;
  settleSeconds?: string;
  maxTransfers?: string;
  maxPerSite?: string;
  pluginCallTimeout?: string;
  pluginMemoryLimit?: string;
}

export function settingsCommands(ic: Command): void {
  const s = ic.command('settings').description("application settings (the seed's Application Settings)");
  s.command('set')
    .description('change application settings')
    .option('--log-directory <dir>', 'where the client and service logs go (default $IC_HOME/logs)')
    .option('--log-removal-days <n>', 'remove log files older than this many days')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
    .option('--overlap-seconds <n>', 'seconds re-read before each cursor')
    .option('--settle-seconds <n>', 'seconds before the appliance now left for the next run')
    .option('--max-transfers <n>', 'transfers running at once in this process (default 4)')
    .option('--max-per-site <n>', 'transfers running at once against one site (default 2)')
    .option(
      '--plugin-call-timeout <seconds>',
      'a plugin call running longer fails and a hung plugin is restarted (default 300)',
    )
    .option('--plugin-memory-limit <mb>', "heap limit of each destination's worker (default 512)")
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic settings set --log-removal-days 30 --log-level info')
    .action(async (o: SettingsOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), (app) => {
        const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
        const next = app.validator.application({
          ...app.db.application(),
          ...(o.logDirectory !== undefined && { logDirectory: o.logDirectory }),
          ...(o.logRemovalDays !== undefined && { logRemovalDays: num(o.logRemovalDays) }),
          ...(o.logLevel !== undefined && { logLevel: o.logLevel }),
          ...(o.overlapSeconds !== undefined && { overlapSeconds: num(o.overlapSeconds) }),
          ...(o.settleSeconds !== undefined && { settleSeconds: num(o.settleSeconds) }),
          ...(o.maxTransfers !== undefined && { maxConcurrentTransfers: num(o.maxTransfers) }),
          ...(o.maxPerSite !== undefined && { maxConcurrentPerSite: num(o.maxPerSite) }),
          ...(o.pluginCallTimeout !== undefined && { pluginCallTimeoutSeconds: num(o.pluginCallTimeout) }),
          ...(o.pluginMemoryLimit !== undefined && { pluginMemoryLimitMb: num(o.pluginMemoryLimit) }),
        });
        app.db.putApplication(next);
        if (o.json) out.json({ saved: true });
        else out.line('application settings saved');
        return Promise.resolve(EXIT.ok);
      });
    });
  s.command('show')
    .description('show application settings (SMTP password masked)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic settings show --json')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), (app) => {
        const a = app.db.application();
        const shown = {
          ...a,
          logDirectory: app.logDir,
          ...(a.notification && { notification: maskPassword(a.notification) }),
        };
        if (o.json) out.json(shown);
        else
          for (const [k, v] of Object.entries(shown))
            out.line(`${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
        return Promise.resolve(EXIT.ok);
      });
    });
}
