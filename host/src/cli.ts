#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { destinationCommands } from './commands/destination.js';
import { initCommand } from './commands/init.js';
import { logsCommand } from './commands/logs.js';
import { notifyCommands } from './commands/notify.js';
import { pluginCheck } from './commands/plugin-check.js';
import { scheduleCommands } from './commands/schedule.js';
import { serviceCommands } from './commands/service.js';
import { settingsCommands } from './commands/settings.js';
import { siteCommands } from './commands/site.js';
import { testCommand } from './commands/test.js';
import { current } from './app.js';
import { EXIT } from './exit-codes.js';
import { HOST_VERSION } from './host-version.js';
import { out } from './output.js';
import { isIcError } from '@integration-client/plugin-sdk';

function program(): Command {
  const ic = new Command('ic')
    .description(
      'Integration Client for BeyondTrust Remote Support: pulls session data, recordings and backups into destinations.',
    )
    .version(HOST_VERSION)
    .option('--home <dir>', 'data directory (default: $IC_HOME or ~/.integration-client)')
    .exitOverride()
    .showHelpAfterError();
  ic.hook('preAction', (_ic, action) => {
    const names: string[] = [];
    for (let c: Command | null = action; c && c !== ic; c = c.parent) names.unshift(c.name());
    current.command = names.join(' ');
  });
  initCommand(ic);
  siteCommands(ic);
  destinationCommands(ic);
  scheduleCommands(ic);
  serviceCommands(ic);
  notifyCommands(ic);
  logsCommand(ic);
  settingsCommands(ic);
  testCommand(ic);
  const plugin = ic.command('plugin').description('work with destination plugins');
  plugin
    .command('check <dir>')
    .description('run the plugin SDK conformance suite on a plugin package')
    .requiredOption('-c, --config <json|file>', 'a valid destination config for the plugin (JSON text or a file)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExample:\n  ic plugin check ./my-plugin --config \'{"path":"/tmp/out.jsonl"}\'')
    .action(async (dir: string, options: { config: string; json?: boolean }) => {
      process.exitCode = await pluginCheck(dir, options);
    });
  return ic;
}

try {
  await program().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    out.error(err);
    process.exitCode =
      isIcError(err) &&
      ['IC_ERR_CONFIG_INVALID', 'IC_ERR_NOT_FOUND', 'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED'].includes(err.code)
        ? EXIT.usage
        : EXIT.failed;
  }
}
