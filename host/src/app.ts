/**
 * The host's composition root: where the data directory is, the secret key, the settings database, the log,
 * and which plugins are available. Commands get everything from here.
 */
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  createLogger,
  DestinationLoader,
  eventFromLog,
  hasSettings,
  openSecretBox,
  Notifier,
  PluginCatalog,
  readSettingsLocation,
  ScheduleRunner,
  type SecretBox,
  SettingsDb,
  SettingsValidator,
  tuneHeapForStreaming,
  type SettingsLocation,
} from '@integration-client/core';
import type { ApplicationSettings } from '@integration-client/schemas';
import { ConfigError } from '@integration-client/plugin-sdk';
import { current } from './current.js';
import { HOST_VERSION } from './host-version.js';
import { logDirectory, removeOldLogs, rollingDestination, type LogKind } from './logs.js';

/** `--home`, else `IC_HOME`, else `~/.integration-client`. */
export function icHome(option?: string): string {
  return resolve(option ?? process.env.IC_HOME ?? join(homedir(), '.integration-client'));
}

const require = createRequire(import.meta.url);
/** First-party plugins ship with the host and load exactly like third-party ones: from their package folder. */
const FIRST_PARTY = ['@integration-client/plugin-file-system', '@integration-client/plugin-sql'];

export function bundledPluginDirs(): string[] {
  return FIRST_PARTY.map((name) => dirname(require.resolve(`${name}/package.json`)));
}

/** The plugins npm project of a data directory. */
export const pluginsDirOf = (home: string) => join(home, 'plugins');

export function pluginCatalog(home: string): PluginCatalog {
  return new PluginCatalog({
    bundledDirs: bundledPluginDirs(),
    pluginsDir: pluginsDirOf(home),
    hostVersion: HOST_VERSION,
  });
}

export interface App {
  readonly home: string;
  /** Where the client and service logs are. */
  readonly logDir: string;
  readonly db: SettingsDb;
  /** Which settings database, and why (default file, location file, IC_SETTINGS_DB). */
  readonly settings: SettingsLocation;
  /** The application settings when the app opened: those stored, with the schema's defaults for the rest. */
  readonly application: ApplicationSettings;
  readonly box: SecretBox;
  readonly log: Logger;
  readonly destinations: DestinationLoader;
  readonly validator: SettingsValidator;
  /** Sends grouped error mails when notifications are set up (`ic notify set`). */
  readonly notifier?: Notifier;
  close(): Promise<void>;
}

/** Opens the data directory. Without `create`, a missing one is an error that says to run `ic init`. */
export async function openApp(home: string, options: { create?: boolean; log?: LogKind } = {}): Promise<App> {
  tuneHeapForStreaming(); // every command that can move data opens the app first
  if (!options.create && !hasSettings(home))
    throw new ConfigError(`no settings database in ${home}; run \`ic init\` first (or pass --home / set IC_HOME)`);
  const box = await openSecretBox(home);
  const settings = await readSettingsLocation(home, box);
  const db = await SettingsDb.open(settings.connection, box);
  // Effective settings: what is stored, and the schema's default for the rest — the same values `ic settings show`
  // prints and the runner uses, whether or not anything was ever saved.
  const validator = new SettingsValidator();
  const stored = await db.application();
  let application: ApplicationSettings;
  let unreadable: unknown;
  try {
    application = validator.application(stored);
  } catch (err) {
    application = stored; // saved by an older version with other rules: used as stored, and said below
    unreadable = err;
  }
  const notification = application.notification;
  const logDir = logDirectory(home, application.logDirectory);
  const removed = removeOldLogs(logDir, application.logRemovalDays);
  let notifier: Notifier | undefined;
  const log: Logger = createLogger({
    level: (process.env.IC_LOG_LEVEL ?? application.logLevel ?? 'info') as 'info',
    name: options.log ?? 'client',
    destination: rollingDestination(logDir, options.log ?? 'client'),
    onError: (bindings, obj, msg) => notifier?.notify(eventFromLog(bindings, obj, msg)),
  });
  if (current.command) log.info({ command: current.command, home }, 'command started');
  if (unreadable)
    log.warn({ err: unreadable }, 'the stored application settings do not pass validation; used as stored');
  if (removed.length) log.info({ removed, days: application.logRemovalDays }, 'removed old log files');
  if (notification && notification.enabled !== false)
    notifier = new Notifier(notification, (err, retryInMs) =>
      log.warn(
        { err, ...(retryInMs !== undefined && { retryInSeconds: retryInMs / 1000 }) },
        retryInMs === undefined
          ? 'a notification mail could not be sent and was given up; the error is in this log'
          : `a notification mail could not be sent; tried again in ${Math.round(retryInMs / 60_000)} min`,
      ),
    );
  const destinations = new DestinationLoader({
    db,
    logger: log,
    catalog: pluginCatalog(home),
    dataDir: join(home, 'data'),
    hostVersion: HOST_VERSION,
    limits: {
      callTimeoutMs: (application.pluginCallTimeoutSeconds ?? 300) * 1000,
      memoryLimitMb: application.pluginMemoryLimitMb ?? 512,
      nice: application.pluginNice ?? 10,
    },
  });
  return {
    home,
    logDir,
    db,
    settings,
    application,
    box,
    log,
    destinations,
    validator,
    notifier,
    close: async () => {
      destinations.shutdown();
      await notifier?.flush();
      notifier?.close();
      await db.close();
    },
  };
}

/** A schedule runner with the engine options and concurrency limits of the application settings. */
export function scheduleRunner(app: App): ScheduleRunner {
  const a = app.application;
  return new ScheduleRunner(
    app.db,
    app.destinations,
    app.log,
    {
      ...(a.overlapSeconds !== undefined && { overlapSeconds: a.overlapSeconds }),
      ...(a.settleSeconds !== undefined && { settleSeconds: a.settleSeconds }),
      ...(a.sessionsInFlight !== undefined && { concurrency: a.sessionsInFlight }),
      ...(a.downloadsPerTransfer !== undefined && { downloads: a.downloadsPerTransfer }),
      ...(a.giveUpHours !== undefined && { giveUpHours: a.giveUpHours }),
    },
    {},
    { maxConcurrentTransfers: a.maxConcurrentTransfers, maxConcurrentPerSite: a.maxConcurrentPerSite },
  );
}
