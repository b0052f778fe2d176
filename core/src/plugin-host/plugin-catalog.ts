/**
 * Which plugins exist on this host: the first-party packages that ship with it and the packages installed into
 * the plugins project (`$IC_HOME/plugins`, an ordinary npm project). Both are read the same way — package.json,
 * manifest, host range, api version, config schema — and no plugin code runs here. The catalog is read afresh
 * on every lookup, so an install, upgrade or removal is seen by the next transfer without a restart.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  deserializeIcError,
  inspectPluginPackage,
  NotFoundError,
  PluginError,
  serializeIcError,
  type InspectedPluginPackage,
  type SerializedIcError,
} from '@integration-client/plugin-sdk';

export type PluginSource = 'bundled' | 'installed';

export interface CatalogEntry {
  /** Manifest id; undefined when the package could not be read far enough to know it. */
  readonly id?: string;
  /** npm package name. */
  readonly name: string;
  readonly version?: string;
  readonly dir: string;
  readonly source: PluginSource;
  /** Present when every no-code check passed. */
  readonly inspected?: InspectedPluginPackage;
  /** Why the plugin is marked failed (and skipped). */
  readonly error?: SerializedIcError;
}

export interface PluginCatalogOptions {
  /** Package folders of the first-party plugins. */
  readonly bundledDirs: readonly string[];
  /** The plugins npm project (holds package.json and node_modules). */
  readonly pluginsDir: string;
  readonly hostVersion: string;
}

/** The npm package names the plugins project depends on. */
export async function installedPackageNames(pluginsDir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(pluginsDir, 'package.json'), 'utf8');
  } catch {
    return [];
  }
  const pkg = JSON.parse(text) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {}).sort();
}

export class PluginCatalog {
  constructor(private readonly o: PluginCatalogOptions) {}

  get pluginsDir(): string {
    return this.o.pluginsDir;
  }

  /** Every plugin, checked; failed ones carry their coded error. Bundled ones first. */
  async list(): Promise<CatalogEntry[]> {
    const dirs: [string, PluginSource][] = [
      ...this.o.bundledDirs.map((d): [string, PluginSource] => [d, 'bundled']),
      ...(await installedPackageNames(this.o.pluginsDir)).map((n): [string, PluginSource] => [
        join(this.o.pluginsDir, 'node_modules', n),
        'installed',
      ]),
    ];
    const entries: CatalogEntry[] = [];
    const taken = new Map<string, string>();
    for (const [dir, source] of dirs) {
      const entry = await this.#inspect(dir, source);
      if (entry.id && entry.inspected) {
        const holder = taken.get(entry.id);
        if (holder) {
          entries.push({
            id: entry.id,
            name: entry.name,
            ...(entry.version && { version: entry.version }),
            dir,
            source,
            error: serializeIcError(
              new PluginError(
                'IC_ERR_PLUGIN_ID_TAKEN',
                `plugin package ${entry.name}@${entry.version ?? '?'}: id "${entry.id}" is already taken by ${holder}; remove one of them (\`ic plugin remove\`)`,
              ),
            ),
          });
          continue;
        }
        taken.set(entry.id, `${entry.name}@${entry.version ?? '?'} (${source})`);
      }
      entries.push(entry);
    }
    return entries;
  }

  /** The checked package of a plugin id; a failed plugin rejects with its own code, an unknown id NOT_FOUND. */
  async get(id: string): Promise<InspectedPluginPackage> {
    const entries = await this.list();
    const entry = entries.find((e) => e.id === id && e.inspected) ?? entries.find((e) => e.id === id);
    if (!entry)
      throw new NotFoundError(
        `no plugin with id ${JSON.stringify(id)} is installed; see \`ic plugin list\` or install it with \`ic plugin install <package>\``,
      );
    if (entry.inspected) return entry.inspected;
    throw deserializeIcError(entry.error ?? serializeIcError(new Error('failed'), 'IC_ERR_PLUGIN_LOAD_FAILED'));
  }

  async #inspect(dir: string, source: PluginSource): Promise<CatalogEntry> {
    try {
      const inspected = await inspectPluginPackage(dir, this.o.hostVersion);
      return { id: inspected.manifest.id, name: inspected.name, version: inspected.version, dir, source, inspected };
    } catch (err) {
      const { name, version, id } = await bareFacts(dir);
      return {
        ...(id && { id }),
        name,
        ...(version && { version }),
        dir,
        source,
        error: serializeIcError(err, 'IC_ERR_PLUGIN_PACKAGE_UNREADABLE'),
      };
    }
  }
}

/** Name, version and id read without any checks, to name a package that failed them. */
async function bareFacts(dir: string): Promise<{ name: string; version?: string; id?: string }> {
  try {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
      name?: unknown;
      version?: unknown;
      integrationClient?: { id?: unknown };
    };
    return {
      name: typeof pkg.name === 'string' ? pkg.name : dir,
      ...(typeof pkg.version === 'string' && { version: pkg.version }),
      ...(typeof pkg.integrationClient?.id === 'string' && { id: pkg.integrationClient.id }),
    };
  } catch {
    return { name: dir };
  }
}
