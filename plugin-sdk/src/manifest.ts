import { pluginManifestSchema, type PluginManifest } from '@integration-client/schemas';
import type satisfiesFn from 'semver/functions/satisfies.js';
import type validRangeFn from 'semver/ranges/valid.js';
import { PluginError } from './errors/index.js';
import type { ValidateFunction } from 'ajv';
import { lazyRequire } from './lazy-require.js';
import { createAjv, formatIssues, toIssues } from './validation.js';
import { MANIFEST_KEY, SUPPORTED_API_VERSIONS } from './version.js';

export type { PluginManifest };

// Loaded on first use, by their own modules: semver's index loads all of it; a plugin worker checks no range.
const satisfies = lazyRequire<typeof satisfiesFn>('semver/functions/satisfies.js');
const validRange = lazyRequire<typeof validRangeFn>('semver/ranges/valid.js');

let compiled: ValidateFunction<PluginManifest> | undefined;
/** The manifest validator, compiled on first use (compiling costs start-up time of every importer). */
function manifestValidator(): ValidateFunction<PluginManifest> {
  compiled ??= createAjv().compile<PluginManifest>(pluginManifestSchema);
  return compiled;
}

/**
 * Reads and validates the manifest from a parsed package.json. Runs no plugin code.
 * Throws IC_ERR_PLUGIN_MANIFEST_MISSING or IC_ERR_PLUGIN_MANIFEST_INVALID.
 */
export function readManifestFrom(packageJson: unknown, where: string): PluginManifest {
  const pkg = (typeof packageJson === 'object' && packageJson !== null ? packageJson : {}) as Record<string, unknown>;
  const manifest = pkg[MANIFEST_KEY];
  if (manifest === undefined) {
    throw new PluginError(
      'IC_ERR_PLUGIN_MANIFEST_MISSING',
      `${where}: package.json has no "${MANIFEST_KEY}" key, so it is not an integration-client plugin.`,
    );
  }
  const validateManifest = manifestValidator();
  if (!validateManifest(manifest)) {
    const issues = toIssues(validateManifest.errors);
    throw new PluginError(
      'IC_ERR_PLUGIN_MANIFEST_INVALID',
      `${where}: the "${MANIFEST_KEY}" manifest is invalid: ${formatIssues(issues)}. Fix these fields in the plugin's package.json.`,
      {
        details: { errors: issues },
      },
    );
  }
  return manifest;
}

/** Throws IC_ERR_PLUGIN_HOST_RANGE unless `hostVersion` satisfies the manifest's `host` range. */
export function checkHostRange(manifest: PluginManifest, hostVersion: string, where: string): void {
  if (validRange()(manifest.host) === null) {
    throw new PluginError(
      'IC_ERR_PLUGIN_MANIFEST_INVALID',
      `${where}: manifest "host" is not a semver range: ${JSON.stringify(manifest.host)}.`,
    );
  }
  if (!satisfies()(hostVersion, manifest.host, { includePrerelease: true })) {
    throw new PluginError(
      'IC_ERR_PLUGIN_HOST_RANGE',
      `${where}: plugin "${manifest.id}" requires host ${manifest.host}, but this host is ${hostVersion}. Install a version of the plugin made for host ${hostVersion}.`,
      { details: { required: manifest.host, hostVersion } },
    );
  }
}

/** Throws IC_ERR_PLUGIN_API_VERSION unless the manifest's `sdkApiVersion` is supported. */
export function checkApiVersion(manifest: PluginManifest, where: string): void {
  if (!SUPPORTED_API_VERSIONS.includes(manifest.sdkApiVersion)) {
    throw new PluginError(
      'IC_ERR_PLUGIN_API_VERSION',
      `${where}: plugin "${manifest.id}" targets SDK api version ${manifest.sdkApiVersion}; this host supports ${SUPPORTED_API_VERSIONS.join(', ')}. Upgrade the plugin or the host.`,
    );
  }
}
