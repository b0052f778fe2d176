import type { Command } from 'commander';
import { pluginCheck } from './plugin-check.js';

export function pluginCommands(ic: Command): void {
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
}
