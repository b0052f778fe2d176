import { join } from 'node:path';
import type { Command } from 'commander';
import {
  hasSettings,
  readSettingsLocation,
  openSecretBox,
  SettingsDb,
  SETTINGS_DB_ENV,
  writeSettingsLocation,
} from '@integration-client/core';
import { ConfigError, sameDatabase } from '@integration-client/plugin-sdk';
import { icHome, openApp } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import type { HomeOptions } from './common.js';

export function initCommand(ic: Command): void {
  ic.command('init')
    .description(
      'create the data directory, the secret key (0600) and the settings database (SQLite, or --settings for PostgreSQL / SQL Server)',
    )
    .option(
      '--settings <connection>',
      'settings database: postgres://user:pw@host:5432/db, mssql://… or Server=…;Database=…; (default: SQLite settings.db in the data directory). Stored encrypted.',
    )
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `\nExamples:\n  ic init --home /var/lib/integration-client\n  ic init --settings postgres://ic:secret@db.example.com:5432/ic_settings\nThe key can come from IC_SECRET_KEY (base64, 32 bytes) instead of the key file; the settings connection from ${SETTINGS_DB_ENV}.\nTo move an existing data directory to another settings database, use \`ic settings migrate --to\`.`,
    )
    .action(async (o: HomeOptions & { settings?: string }, cmd: Command) => {
      const home = icHome(cmd.optsWithGlobals<HomeOptions>().home);
      const existed = hasSettings(home);
      if (o.settings !== undefined) {
        const box = await openSecretBox(home);
        if (existed) {
          const now = await readSettingsLocation(home, box);
          if (!sameDatabase(now.connection, o.settings))
            throw new ConfigError(
              `${home} already uses the settings database ${now.location}; to move it, run \`ic settings migrate --to <connection>\``,
            );
        } else {
          // Create (or upgrade) the tables first: a location is only written for a database that opens.
          await (await SettingsDb.open(o.settings, box)).close();
          writeSettingsLocation(home, box, o.settings);
        }
      }
      const app = await openApp(home, { create: true });
      const info = {
        home,
        settings: app.settings.location,
        settingsFrom: app.settings.source,
        secretKey: process.env.IC_SECRET_KEY ? 'IC_SECRET_KEY' : join(home, 'secret.key'),
        schemaVersion: app.db.schemaVersion(),
        created: !existed,
      };
      await app.close();
      if (o.json) out.json(info);
      else {
        out.line(`${existed ? 'already initialised' : 'initialised'}: ${home}`);
        out.line(
          `  settings database  ${info.settings} (schema ${info.schemaVersion}${info.settingsFrom === 'env' ? `, from ${SETTINGS_DB_ENV}` : ''})`,
        );
        out.line(`  secret key         ${info.secretKey}  — back it up: without it stored secrets cannot be read`);
        out.line('\nNext: ic site add <name> --host … --client-id …');
      }
      process.exitCode = EXIT.ok;
    });
}
