import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { icHome, openApp } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import type { HomeOptions } from './common.js';

export function initCommand(ic: Command): void {
  ic.command('init')
    .description('create the data directory, the secret key (0600) and the settings database (SQLite)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExample:\n  ic init --home /var/lib/integration-client\nThe key can come from IC_SECRET_KEY (base64, 32 bytes) instead of the key file.',
    )
    .action(async (o: HomeOptions, cmd: Command) => {
      const home = icHome(cmd.optsWithGlobals<HomeOptions>().home);
      const existed = existsSync(join(home, 'settings.db'));
      const app = await openApp(home, { create: true });
      const info = {
        home,
        settings: app.db.file,
        secretKey: process.env.IC_SECRET_KEY ? 'IC_SECRET_KEY' : join(home, 'secret.key'),
        schemaVersion: app.db.schemaVersion(),
        created: !existed,
      };
      await app.close();
      if (o.json) out.json(info);
      else {
        out.line(`${existed ? 'already initialised' : 'initialised'}: ${home}`);
        out.line(`  settings database  ${info.settings} (schema ${info.schemaVersion})`);
        out.line(`  secret key         ${info.secretKey}  — back it up: without it stored secrets cannot be read`);
        out.line('\nNext: ic site add <name> --host … --client-id …');
      }
      process.exitCode = EXIT.ok;
    });
}
