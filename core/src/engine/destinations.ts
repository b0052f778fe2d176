/**
 * Opens destination instances from the settings database: the plugin is looked up in the catalog (manifest,
 * host range, api version and config schema checked before its code runs), the stored config is validated
 * against the plugin's schema, and the instance is created in its own worker thread (ADR 009) with a private
 * data directory. `isolation: 'in-process'` creates it in this thread instead (benchmarks, `ic plugin check`).
 */
import { join } from 'node:path';
import {
  entryFacts,
  importPluginEntry,
  type Destination,
  type InspectedPluginPackage,
  makeDirectory,
} from '@integration-client/plugin-sdk';
import type { DestinationSettings } from '@integration-client/schemas';
import type { Logger } from 'pino';
import type { PluginCatalog } from '../plugin-host/plugin-catalog.js';
import { WorkerDestination, type IsolationOptions } from '../plugin-host/worker-destination.js';
import type { SettingsDb } from '../settings-db/settings-db.js';
import type { OpenDestination } from './transfer-engine.js';

export interface DestinationLoaderOptions {
  readonly db: SettingsDb;
  readonly logger: Logger;
  readonly catalog: PluginCatalog;
  /** Where instances keep state: `<dataDir>/<destination name>`. */
  readonly dataDir: string;
  readonly hostVersion: string;
  /** Default `worker`. */
  readonly isolation?: 'worker' | 'in-process';
  /** Timeouts and limits of worker instances (defaults: 300 s per call, 512 MB heap, nice 10). */
  readonly limits?: Partial<IsolationOptions>;
}

export class DestinationLoader {
  readonly #controller = new AbortController();

  constructor(private readonly o: DestinationLoaderOptions) {}

  /** The checked package of a plugin id (no plugin code runs). */
  plugin(id: string): Promise<InspectedPluginPackage> {
    return this.o.catalog.get(id);
  }

  /**
   * Creates a live instance of a stored destination — or of `settings` not stored (yet): `ic destination add` tests a
   * destination before it saves it.
   */
  async open(name: string, settings?: DestinationSettings): Promise<OpenDestination> {
    const stored = settings ?? (await this.o.db.destination(name));
    const pkg = await this.plugin(stored.plugin);
    const config = pkg.configSchema.validate(stored.config, `destination ${JSON.stringify(name)}`);
    const dataDir = join(this.o.dataDir, safeDirName(name));
    makeDirectory(dataDir);
    const logger = this.o.logger.child({ destination: name, plugin: stored.plugin, pluginVersion: pkg.version });
    const operations = pkg.manifest.operations;
    let instance: Destination;
    let ready: Promise<void> | undefined;
    let restarts: (() => number) | undefined;
    let modelAsText = false;
    if (this.o.isolation === 'in-process') {
      const loaded = await importPluginEntry(pkg); // the catalog ran the no-code checks
      instance = await loaded.plugin.create({
        config,
        destinationName: name,
        logger,
        signal: this.#controller.signal,
        dataDir,
        hostVersion: this.o.hostVersion,
      });
    } else {
      // Not awaited here: the worker starts while the engine requests the report (see OpenDestination.ready).
      const worker = WorkerDestination.launch(
        {
          packageDir: pkg.dir,
          package: entryFacts(pkg),
          pluginId: stored.plugin,
          operations,
          config: config,
          destinationName: name,
          dataDir,
          hostVersion: this.o.hostVersion,
          logLevel: this.o.logger.level,
        },
        logger,
        { callTimeoutMs: 300_000, memoryLimitMb: 512, nice: 10, ...this.o.limits },
      );
      instance = worker;
      ready = worker.ready;
      restarts = () => worker.restarts;
      modelAsText = true; // the model crosses to the worker as JSON text (see OpenDestination.modelAsText)
    }
    return { name, plugin: stored.plugin, operations, instance, ready, restarts, modelAsText };
  }

  /** Aborts every in-process instance's context signal. */
  shutdown(): void {
    this.#controller.abort();
  }
}

const safeDirName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_');
