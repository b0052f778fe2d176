#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { pluginCheck } from './commands/plugin-check.js';
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
    .exitOverride()
    .showHelpAfterError();
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
    process.exitCode = isIcError(err) && err.code === 'IC_ERR_CONFIG_INVALID' ? EXIT.usage : EXIT.failed;
  }
}
