import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginManifest } from '@integration-client/schemas';
import { compileConfigSchema, type ConfigSchema } from './config-schema.js';
import { isDestinationPlugin, type DestinationPlugin } from './define-destination.js';
import { PluginError } from './errors/index.js';
import { checkApiVersion, checkHostRange, readManifestFrom } from './manifest.js';

/** A plugin package that passed every check and whose entry module is loaded. */
export interface LoadedPluginPackage {
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  readonly manifest: PluginManifest;
  readonly configSchema: ConfigSchema;
  readonly plugin: DestinationPlugin;
}

/** The checks made before any plugin code runs. */
export interface InspectedPluginPackage extends Omit<LoadedPluginPackage, 'plugin'> {
  readonly entry: string;
}

async function readJson(
  path: string,
  code: 'IC_ERR_PLUGIN_PACKAGE_UNREADABLE' | 'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID',
  where: string,
): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PluginError(code, `${where}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PluginError(code, `${where}: ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function insidePackage(
  dir: string,
  file: string,
  what: string,
  where: string,
  code: 'IC_ERR_PLUGIN_MANIFEST_INVALID',
): string {
  const full = resolve(dir, file);
  const rel = relative(dir, full);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new PluginError(code, `${where}: ${what} "${file}" points outside the package.`);
  return full;
}

function entryOf(pkg: Record<string, unknown>, manifest: PluginManifest): string {
  if (manifest.entry) return manifest.entry;
  const exp = pkg.exports;
  const dot = typeof exp === 'object' && exp !== null && '.' in exp ? (exp as Record<string, unknown>)['.'] : exp;
  if (typeof dot === 'string') return dot;
  if (typeof dot === 'object' && dot !== null) {
    const d = dot as Record<string, unknown>;
    const target = d.import ?? d.default;
    if (typeof target === 'string') return target;
  }
  return typeof pkg.main === 'string' ? pkg.main : 'index.js';
}

/**
 * Reads a plugin package and runs every check that needs no plugin code: package.json readable, manifest valid,
 * SDK api version supported, host range satisfied, config schema compiles. Each failure is a coded PluginError.
 */
export async function inspectPluginPackage(packageDir: string, hostVersion: string): Promise<InspectedPluginPackage> {
  const dir = resolve(packageDir);
  const pkg = (await readJson(join(dir, 'package.json'), 'IC_ERR_PLUGIN_PACKAGE_UNREADABLE', dir)) as Record<
    string,
    unknown
  >;
  const name = typeof pkg.name === 'string' ? pkg.name : dir;
  const version = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  const where = `plugin package ${name}@${version}`;
  const manifest = readManifestFrom(pkg, where);
  checkApiVersion(manifest, where);
  checkHostRange(manifest, hostVersion, where);
  const schemaPath = insidePackage(dir, manifest.configSchema, 'configSchema', where, 'IC_ERR_PLUGIN_MANIFEST_INVALID');
  const configSchema = compileConfigSchema(
    await readJson(schemaPath, 'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID', where),
    where,
  );
  const entry = insidePackage(dir, entryOf(pkg, manifest), 'entry', where, 'IC_ERR_PLUGIN_MANIFEST_INVALID');
  return { dir, name, version, manifest, configSchema, entry };
}

/** What importPluginEntry() needs of an inspected package: plain data, so a host can hand it to a worker thread. */
export type PluginEntryFacts = Pick<InspectedPluginPackage, 'dir' | 'name' | 'version' | 'manifest' | 'entry'>;

/** The PluginEntryFacts of an inspected package (without its compiled config schema, which cannot be cloned). */
export function entryFacts({ dir, name, version, manifest, entry }: PluginEntryFacts): PluginEntryFacts {
  return { dir, name, version, manifest, entry };
}

/**
 * Imports an inspected package's entry module and checks it default-exports the destination its manifest names.
 * Runs no check of inspectPluginPackage() again: pass what it returned (or those facts of it, see PluginEntryFacts).
 */
export async function importPluginEntry<T extends PluginEntryFacts>(
  inspected: T,
): Promise<T & { readonly plugin: DestinationPlugin }> {
  const where = `plugin package ${inspected.name}@${inspected.version}`;
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(inspected.entry).href)) as { default?: unknown };
  } catch (err) {
    throw new PluginError(
      'IC_ERR_PLUGIN_LOAD_FAILED',
      `${where}: importing ${inspected.entry} failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const plugin = mod.default;
  if (!isDestinationPlugin(plugin)) {
    throw new PluginError(
      'IC_ERR_PLUGIN_NOT_A_DESTINATION',
      `${where}: ${inspected.entry} must default-export the result of defineDestination().`,
    );
  }
  if (plugin.id !== inspected.manifest.id) {
    throw new PluginError(
      'IC_ERR_PLUGIN_ID_MISMATCH',
      `${where}: defineDestination() id "${plugin.id}" differs from manifest id "${inspected.manifest.id}".`,
    );
  }
  return { ...inspected, plugin };
}

/** inspectPluginPackage() then importPluginEntry(). */
export async function loadPluginPackage(packageDir: string, hostVersion: string): Promise<LoadedPluginPackage> {
  return importPluginEntry(await inspectPluginPackage(packageDir, hostVersion));
}
