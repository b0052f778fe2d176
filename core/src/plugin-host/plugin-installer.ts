/**
 * Installs and removes plugin packages in the plugins project (`$IC_HOME/plugins`) with npm:
 * 1. `npm pack <spec> --ignore-scripts` fetches the package (name@version, tarball or folder) without running it;
 * 2. the tarball is unpacked and given every no-code check (manifest, host range, api version, config schema,
 *    id not taken) — a refused package never reaches the plugins project;
 * 3. npm installs it (registry packages pinned to the exact version packed; tarballs and folders from a copy
 *    kept in `plugins/packages/`, so the install does not depend on the original path);
 * 4. its entry is imported in a throw-away worker; if that fails, the previous state is restored.
 * A running service sees the result at its next transfer (the catalog is read per transfer); a transfer already
 * running keeps the worker, and so the code, it started with.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import {
  ConfigError,
  inspectPluginPackage,
  NotFoundError,
  PluginError,
  type Operation,
  makeDirectory,
} from '@integration-client/plugin-sdk';
import { installedPackageNames, type PluginCatalog } from './plugin-catalog.js';
import { probePluginCode } from './worker-destination.js';

const run = promisify(execFile);

export interface InstallOptions {
  /** npm registry for this install; remembered in the plugins project's .npmrc for later installs. */
  readonly registry?: string;
  readonly hostVersion: string;
  /** The npm executable (default `npm`, or IC_NPM). */
  readonly npm?: string;
  /** Working directory relative folder/tarball specs are resolved against. */
  readonly cwd?: string;
}

export interface InstallResult {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly previousVersion?: string;
  readonly operations: readonly Operation[];
}

const PROJECT = {
  name: 'integration-client-plugins',
  private: true,
  description: 'Plugins installed by `ic plugin install`.',
};

async function ensureProject(pluginsDir: string): Promise<void> {
  makeDirectory(pluginsDir);
  const pkg = join(pluginsDir, 'package.json');
  if (!existsSync(pkg)) await writeFile(pkg, JSON.stringify({ ...PROJECT, dependencies: {} }, null, 2) + '\n');
}

const SDK = '@integration-client/plugin-sdk';

/**
 * The folder of this host's plugin SDK when the host runs from a source checkout (the SDK is not under a
 * node_modules folder, so it did not come from a registry); undefined for an installed host.
 */
export function checkoutSdkDir(sdkEntry = createRequire(import.meta.url).resolve(SDK)): string | undefined {
  let dir = dirname(sdkEntry);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir.includes(`${sep}node_modules${sep}`) ? undefined : dir;
}

/**
 * A host run from a source checkout, installing without a registry of its own, gives its plugins its own SDK (an
 * npm `overrides` entry in the plugins project): the SDK is not on the public registry yet, and npm failed with a
 * 404 on the plugin's `@integration-client/plugin-sdk` dependency. With a registry (`--registry`, the one an
 * earlier install remembered, or npm_config_registry), the registry's SDK is used, and an override from before is
 * taken out. A registry set only in ~/.npmrc is not looked at: the checkout's SDK is the host's own, so it fits.
 */
async function provideSdk(pluginsDir: string, registry: string | undefined): Promise<void> {
  const file = join(pluginsDir, 'package.json');
  const pkg = JSON.parse(await readFile(file, 'utf8')) as { overrides?: Record<string, string> };
  const dir = registry || process.env.npm_config_registry ? undefined : checkoutSdkDir();
  const want = dir ? `file:${dir}` : undefined;
  if (pkg.overrides?.[SDK] === want) return;
  const overrides = { ...pkg.overrides };
  if (want) overrides[SDK] = want;
  else delete overrides[SDK];
  if (Object.keys(overrides).length) pkg.overrides = overrides;
  else delete pkg.overrides;
  await writeFile(file, JSON.stringify(pkg, null, 2) + '\n');
}

async function npm(args: string[], o: Omit<InstallOptions, 'hostVersion'>, cwd: string): Promise<string> {
  const registry = o.registry ? ['--registry', o.registry] : [];
  try {
    const { stdout } = await run(
      o.npm ?? process.env.IC_NPM ?? 'npm',
      [...args, ...registry, '--no-audit', '--no-fund'],
      {
        cwd,
        maxBuffer: 64 << 20,
        env: { ...process.env, npm_config_update_notifier: 'false' },
      },
    );
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const tail = (e.stderr ?? e.message).trim().split('\n').slice(-6).join('\n');
    throw new PluginError('IC_ERR_PLUGIN_INSTALL_FAILED', `npm ${args[0]} failed:\n${tail}`, { cause: err });
  }
}

/** True for a spec that names a folder or a tarball rather than a registry package. */
function isLocalSpec(spec: string): boolean {
  return (
    spec.startsWith('.') ||
    spec.startsWith('/') ||
    spec.startsWith('file:') ||
    /\.(tgz|tar\.gz)$/.test(spec) ||
    isAbsolute(spec)
  );
}

async function installedVersion(pluginsDir: string, name: string): Promise<string | undefined> {
  try {
    const pkg = JSON.parse(await readFile(join(pluginsDir, 'node_modules', name, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version;
  } catch {
    return undefined;
  }
}

/** The registry an earlier install remembered in the plugins project's .npmrc. */
async function rememberedRegistry(pluginsDir: string): Promise<string | undefined> {
  try {
    return /^registry=(.+)$/m.exec(await readFile(join(pluginsDir, '.npmrc'), 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

async function dependencySpec(pluginsDir: string, name: string): Promise<string | undefined> {
  const pkg = JSON.parse(await readFile(join(pluginsDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return pkg.dependencies?.[name];
}

export async function installPlugin(spec: string, catalog: PluginCatalog, o: InstallOptions): Promise<InstallResult> {
  const pluginsDir = catalog.pluginsDir;
  await ensureProject(pluginsDir);
  if (o.registry) await writeFile(join(pluginsDir, '.npmrc'), `registry=${o.registry}\n`);
  await provideSdk(pluginsDir, o.registry ?? (await rememberedRegistry(pluginsDir)));
  const staging = await mkdtemp(join(pluginsDir, '.staging-'));
  try {
    const local = isLocalSpec(spec);
    const target = local ? resolve(o.cwd ?? process.cwd(), spec.replace(/^file:/, '')) : spec;
    const packed = JSON.parse(
      await npm(['pack', target, '--json', '--ignore-scripts', '--pack-destination', staging], o, staging),
    ) as { name: string; version: string; filename: string }[];
    const tarball = join(staging, basename(packed[0]?.filename ?? ''));
    if (!packed[0] || !existsSync(tarball))
      throw new PluginError('IC_ERR_PLUGIN_INSTALL_FAILED', `npm pack ${spec} produced no tarball`);
    const unpacked = join(staging, 'unpacked');
    await mkdir(unpacked);
    await run('tar', ['-xzf', tarball, '-C', unpacked]);
    const inspected = await inspectPluginPackage(join(unpacked, 'package'), o.hostVersion);
    const owner = (await catalog.list()).find((e) => e.id === inspected.manifest.id && e.inspected);
    if (owner && (owner.source === 'bundled' || owner.name !== inspected.name))
      throw new PluginError(
        'IC_ERR_PLUGIN_ID_TAKEN',
        `plugin package ${inspected.name}@${inspected.version}: id "${inspected.manifest.id}" is already taken by ${owner.name}@${owner.version ?? '?'} (${owner.source})`,
      );
    const previousSpec = existsSync(join(pluginsDir, 'package.json'))
      ? await dependencySpec(pluginsDir, inspected.name)
      : undefined;
    const previousVersion = await installedVersion(pluginsDir, inspected.name);
    let depSpec = `${inspected.name}@${inspected.version}`;
    if (local) {
      makeDirectory(join(pluginsDir, 'packages'));
      await copyFile(tarball, join(pluginsDir, 'packages', basename(tarball)));
      depSpec = `${inspected.name}@file:packages/${basename(tarball)}`;
    }
    await npm(['install', '--save', '--save-exact', depSpec], o, pluginsDir);
    try {
      await probePluginCode(join(pluginsDir, 'node_modules', inspected.name), o.hostVersion);
    } catch (err) {
      await npm(
        previousSpec
          ? ['install', '--save', '--save-exact', `${inspected.name}@${previousSpec}`]
          : ['uninstall', inspected.name],
        o,
        pluginsDir,
      ).catch(() => undefined);
      throw err;
    }
    return {
      id: inspected.manifest.id,
      name: inspected.name,
      version: inspected.version,
      ...(previousVersion && previousVersion !== inspected.version && { previousVersion }),
      operations: inspected.manifest.operations,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Removes an installed plugin by id (or package name). Bundled plugins cannot be removed. */
export async function removePlugin(
  idOrName: string,
  catalog: PluginCatalog,
  o: Omit<InstallOptions, 'hostVersion'>,
): Promise<{ id?: string; name: string; version?: string }> {
  const entries = await catalog.list();
  const entry = entries.find((e) => e.source === 'installed' && (e.id === idOrName || e.name === idOrName));
  if (!entry) {
    const bundled = entries.find((e) => e.source === 'bundled' && e.id === idOrName);
    if (bundled)
      throw new ConfigError(
        `plugin "${idOrName}" ships with the host and cannot be removed; remove the destinations that use it instead`,
      );
    throw new NotFoundError(`no installed plugin "${idOrName}"; see \`ic plugin list\``);
  }
  if (!(await installedPackageNames(catalog.pluginsDir)).includes(entry.name))
    throw new NotFoundError(`no installed plugin "${idOrName}"`);
  const spec = await dependencySpec(catalog.pluginsDir, entry.name);
  await npm(['uninstall', entry.name], o, catalog.pluginsDir);
  if (spec?.startsWith('file:packages/'))
    await rm(join(catalog.pluginsDir, spec.slice('file:'.length)), { force: true });
  return { ...(entry.id && { id: entry.id }), name: entry.name, ...(entry.version && { version: entry.version }) };
}
