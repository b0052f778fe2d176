/**
 * Which settings database a data directory uses. By default SQLite `settings.db` in the data directory; after
 * `ic init --settings <connection>` or `ic settings migrate --to <connection>`, the connection string kept in
 * `settings-location.json`, sealed with the data directory's secret key (it may hold a password); or, for
 * containers, the connection string in the environment variable IC_SETTINGS_DB, which wins over both.
 */
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, parseConnectionString } from '@integration-client/plugin-sdk';
import { SecretBox } from '../secrets/secret-box.js';

export const SETTINGS_DB_ENV = 'IC_SETTINGS_DB';
const LOCATION_FILE = 'settings-location.json';

export interface SettingsLocation {
  /** The connection string (a secret: never print it; print `location`). */
  readonly connection: string;
  /** Where, without credentials. */
  readonly location: string;
  /** Why this one: the default file, the location file, or the environment. */
  readonly source: 'default' | 'file' | 'env';
}

export const defaultSettingsConnection = (home: string) => `sqlite:${join(home, 'settings.db')}`;

/**
 * The data directory's secret box (`secret.key`, or IC_SECRET_KEY). A key is made only for a data directory with no
 * settings of its own yet: where its SQLite settings or its location file are, the secrets were sealed with the
 * missing key, and opening refuses with what to restore.
 */
export function openSecretBox(home: string, env: NodeJS.ProcessEnv = process.env): Promise<SecretBox> {
  const settled = existsSync(join(home, LOCATION_FILE)) || existsSync(join(home, 'settings.db'));
  return SecretBox.open(join(home, 'secret.key'), env, { create: !settled });
}

/** Whether `home` has a settings database set up (or the environment names one). */
export function hasSettings(home: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!env[SETTINGS_DB_ENV] || existsSync(join(home, LOCATION_FILE)) || existsSync(join(home, 'settings.db'));
}

export async function readSettingsLocation(
  home: string,
  box: SecretBox,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SettingsLocation> {
  const fromEnv = env[SETTINGS_DB_ENV];
  if (fromEnv) return describe(fromEnv, 'env');
  const file = join(home, LOCATION_FILE);
  if (!existsSync(file)) return describe(defaultSettingsConnection(home), 'default');
  let sealed: unknown;
  try {
    sealed = (JSON.parse(await readFile(file, 'utf8')) as { connection?: unknown }).connection;
  } catch (err) {
    throw new ConfigError(
      `${file} cannot be read (${(err as Error).message}); restore it or run \`ic init --settings\``,
    );
  }
  if (typeof sealed !== 'string') throw new ConfigError(`${file} has no connection; run \`ic init --settings\``);
  return describe(box.open(sealed), 'file');
}

/** Makes `connection` the data directory's settings database (the default SQLite file removes the pointer). */
export function writeSettingsLocation(home: string, box: SecretBox, connection: string): SettingsLocation {
  const file = join(home, LOCATION_FILE);
  const parsed = parseConnectionString(connection);
  // A SQLite path is kept absolute: the service does not start in the directory `ic` was run from.
  const where = describe(parsed.engine === 'sqlite' ? `sqlite:${parsed.file}` : connection, 'file');
  if (parsed.key === parseConnectionString(defaultSettingsConnection(home)).key) {
    rmSync(file, { force: true });
    return { ...where, source: 'default' };
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(
    tmp,
    `${JSON.stringify({ location: where.location, connection: box.seal(where.connection) }, null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
  renameSync(tmp, file);
  return where;
}

function describe(connection: string, source: SettingsLocation['source']): SettingsLocation {
  return { connection, location: parseConnectionString(connection).location, source };
}
