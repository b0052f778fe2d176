#!/usr/bin/env node
/**
 * `ic`. Only the invoked command's module is loaded (with the kernel behind it); the others are registered by
 * name and description, so `ic --help` starts fast.
 */
import { IcError } from '@integration-client/plugin-sdk/errors';
import { Command, CommanderError } from 'commander';
import { current } from './current.js';
import { EXIT } from './exit-codes.js';
import { HOST_VERSION } from './host-version.js';
import { out } from './output.js';

type Register = (ic: Command) => void;
const COMMANDS: Record<string, [description: string, load: () => Promise<Register>]> = {
  init: [
    'create the data directory, the secret key and the settings database',
    async () => (await import('./commands/init.js')).initCommand,
  ],
  site: [
    "BeyondTrust sites to pull from (the seed's Site Configuration)",
    async () => (await import('./commands/site.js')).siteCommands,
  ],
  destination: [
    'destinations: configured instances of destination plugins',
    async () => (await import('./commands/destination.js')).destinationCommands,
  ],
  schedule: [
    "schedules: a period and the transfers that run together (the seed's Schedule)",
    async () => (await import('./commands/schedule.js')).scheduleCommands,
  ],
  service: [
    'the scheduler service: run, start, stop, install, uninstall, status',
    async () => (await import('./commands/service.js')).serviceCommands,
  ],
  test: [
    "the seed's API Tester: pull a window or sessions now (no cursor moves), or parse XML files",
    async () => (await import('./commands/test.js')).testCommand,
  ],
  failed: [
    'items that failed for good (the cursor moved on without them): list, retry, dismiss',
    async () => (await import('./commands/failed.js')).failedCommands,
  ],
  notify: [
    'e-mail notifications of logged errors (grouped)',
    async () => (await import('./commands/notify.js')).notifyCommands,
  ],
  logs: [
    'print the client log (or the service log) readably',
    async () => (await import('./commands/logs.js')).logsCommand,
  ],
  settings: [
    "application settings (the seed's Application Settings)",
    async () => (await import('./commands/settings.js')).settingsCommands,
  ],
  plugin: ['work with destination plugins', async () => (await import('./commands/plugin.js')).pluginCommands],
};

/** The command word of argv (skipping global options and the value of --home). */
function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--home') i++;
    else if (!a.startsWith('-')) return a === 'help' ? argv[i + 1] : a;
  }
  return undefined;
}

async function program(argv: readonly string[]): Promise<Command> {
  const ic = new Command('ic')
    .description(
      'Integration Client for BeyondTrust Remote Support: pulls session data, recordings and backups into destinations.',
    )
    .version(HOST_VERSION)
    .option('--home <dir>', 'data directory (default: $IC_HOME or ~/.integration-client)')
    .addHelpText('after', '\nStart with:\n  ic init && ic site add --help\nEvery command has --help with an example.')
    .exitOverride()
    .showHelpAfterError();
  // With --json a bad command line is one JSON error line too (see the catch below), not commander's text and help.
  if (argv.includes('--json')) ic.configureOutput({ writeErr: () => undefined });
  ic.hook('preAction', (_ic, action) => {
    const names: string[] = [];
    for (let c: Command | null = action; c && c !== ic; c = c.parent) names.unshift(c.name());
    current.command = names.join(' ');
  });
  const word = commandWord(argv);
  for (const [name, [description, load]] of Object.entries(COMMANDS)) {
    if (name === word) (await load())(ic);
    else ic.command(name).description(description);
  }
  return ic;
}

// A reader that stops reading (`ic logs | head`) ends the command quietly, as it ends any Unix tool; the engine's
// work is safe to stop anywhere (an unfinished run is caught up by the next).
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? EXIT.ok);
  });

try {
  await (await program(process.argv.slice(2))).parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err.exitCode !== 0 && process.argv.includes('--json'))
      out.error(new IcError('IC_ERR_USAGE', `${err.message.replace(/^error: /, '')}; see --help`), true);
  } else {
    out.error(err, process.argv.includes('--json'));
    const code = (err as { code?: unknown } | null)?.code;
    process.exitCode = [
      'IC_ERR_CONFIG_INVALID',
      'IC_ERR_NOT_FOUND',
      'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED',
    ].includes(String(code))
      ? EXIT.usage
      : EXIT.failed;
  }
}
