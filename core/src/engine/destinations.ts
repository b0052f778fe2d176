/**
 * Opens destination instances from the settings database: the plugin package is loaded (manifest, host range,
 * api version and config schema checked before its code runs), the stored config is validated against the
 * plugin's schema, and the plugin's create() gets a context with a child logger and a private data directory.
 * Instances run in this process for now; isolation in a worker is the plugin-host issue's work.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPluginPackage, NotFoundError, type LoadedPluginPackage } from '@integration-client/plugin-sdk';
import type { Logger } from 'pino';
import type { SettingsDb } from '../settings-db/settings-db.js';
import type { OpenDestination } from './transfer-engine.js';

export interface DestinationLoaderOptions {
  readonly db: SettingsDb;
  readonly logger: Logger;
  /** Plugin id → package directory. */
  readonly pluginDirs: ReadonlyMap<string, string>;
  /** Where instances keep state: `<dataDir>/<destination name>`. */
  readonly dataDir: string;
  readonly hostVersion: string;
}

export class DestinationLoader {
  readonly #packages = new Map<string, Promise<LoadedPluginPackage>>();
  readonly #controller = new AbortController();

  constructor(private readonly o: DestinationLoaderOptions) {}

  /** The loaded package of a plugin id (once). */
  plugin(id: string): Promise<LoadedPluginPackage> {
    const dir = this.o.pluginDirs.get(id);
    if (!dir)
      return Promise.reject(
        new NotFoundError(`no plugin with id ${JSON.stringify(id)} is installed; see \`ic plugin list\``),
      );
    let p = this.#packages.get(id);
    if (!p) this.#packages.set(id, (p = loadPluginPackage(dir, this.o.hostVersion)));
    return p;
  }

  /** Creates a live instance of a stored destination. */
  async open(name: string): Promise<OpenDestination> {
    const stored = this.o.db.destination(name);
    const pkg = await this.plugin(stored.plugin);
    const config = pkg.configSchema.validate(stored.config, `destination ${JSON.stringify(name)}`);
    const dataDir = join(this.o.dataDir, safeDirName(name));
    await mkdir(dataDir, { recursive: true });
    const instance = await pkg.plugin.create({
      config,
      destinationName: name,
      logger: this.o.logger.child({ destination: name, plugin: stored.plugin }),
      signal: this.#controller.signal,
      dataDir,
      hostVersion: this.o.hostVersion,
    });
    return { name, plugin: stored.plugin, operations: pkg.manifest.operations, instance };
  }

  /** Aborts every instance's context signal. */
  shutdown(): void {
    this.#controller.abort();
  }
}

const safeDirName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_');
