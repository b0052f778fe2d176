import { Notifier } from '@integration-client/core';
import { ConfigError } from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { collect, maskPassword, printSettings, withApp, type HomeOptions } from './common.js';
import { opts } from './site.js';

interface NotifyOptions extends HomeOptions {
  smtpHost?: string;
  smtpPort?: string;
  secure?: boolean;
  username?: string;
  password?: string;
  from?: string;
  to?: string[];
  groupMinutes?: string;
  disable?: boolean;
}

export function notifyCommands(ic: Command): void {
  const n = ic.command('notify').description('e-mail notifications of logged errors (grouped)');
  n.command('set')
    .description('set up SMTP notifications; errors of one kind within the group window make one mail')
    .option('--smtp-host <host>', 'SMTP server')
    .option('--smtp-port <port>', 'port (default 587)')
    .option('--secure', 'TLS from the first byte (port 465); otherwise STARTTLS when offered')
    .option('--username <user>', 'SMTP user')
    .option('--password <password>', 'SMTP password (or IC_SMTP_PASSWORD); stored encrypted')
    .option('--from <address>', 'sender address')
    .option('--to <address>', 'recipient (repeatable)', collect)
    .option('--group-minutes <n>', 'group window in minutes (default 60)')
    .option('--disable', 'keep the settings but send nothing')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExample:\n  ic notify set --smtp-host smtp.example.com --from ic@example.com --to ops@example.com',
    )
    .action(async (o: NotifyOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const current = await app.db.application();
        const prev = current.notification;
        const password = o.password ?? process.env.IC_SMTP_PASSWORD;
        const next = app.validator.applicationToStore({
          ...current,
          notification: {
            ...prev,
            ...(o.smtpHost !== undefined && { smtpHost: o.smtpHost }),
            ...(o.smtpPort !== undefined && { smtpPort: Number(o.smtpPort) }),
            ...(o.secure !== undefined && { secure: o.secure }),
            ...(o.username !== undefined && { username: o.username }),
            ...(password !== undefined && { password }),
            ...(o.from !== undefined && { from: o.from }),
            ...(o.to?.length && { to: o.to }),
            ...(o.groupMinutes !== undefined && { groupWindowMinutes: Number(o.groupMinutes) }),
            enabled: !o.disable,
          },
        });
        await app.db.putApplication(next);
        if (o.json) out.json({ saved: true });
        else
          out.line(
            o.disable
              ? 'notifications disabled (on again: `ic notify set`)'
              : `notifications to ${next.notification!.to.join(', ')} saved; try \`ic notify test\``,
          );
        return EXIT.ok;
      });
    });
  n.command('show')
    .description('show the notification settings in effect (defaults marked; password masked)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic notify show')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const stored = (await app.db.application()).notification;
        const x = app.application.notification; // with the schema's defaults
        const shown = x ? maskPassword(x) : undefined;
        if (o.json) out.json(shown ?? null);
        else if (!shown || !stored) out.line('notifications are not set up; see `ic notify set --help`');
        else printSettings(shown, stored);
        return EXIT.ok;
      });
    });
  n.command('test')
    .description('send a test mail now')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic notify test')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const x = (await app.db.application()).notification;
        if (!x) throw new ConfigError('notifications are not set up; run `ic notify set` first');
        const notifier = new Notifier(x);
        try {
          await notifier.send('test mail', `This is a test mail from the Integration Client in ${app.home}.`);
        } catch (err) {
          const text = err instanceof Error ? err.message : String(err);
          if (o.json) out.json({ ok: false, message: text });
          else out.line(`FAILED: could not send through ${x.smtpHost}:${x.smtpPort ?? 587}: ${text}`);
          return EXIT.failed;
        } finally {
          notifier.close();
        }
        if (o.json) out.json({ ok: true, to: x.to });
        else out.line(`ok: test mail sent to ${x.to.join(', ')}`);
        return EXIT.ok;
      });
    });
}
