/** The plugin SDK api version. A plugin's manifest `sdkApiVersion` must be one of {@link SUPPORTED_API_VERSIONS}. */
export const SDK_API_VERSION = 1;

/** Api versions this SDK (and a host built on it) can load. */
export const SUPPORTED_API_VERSIONS: readonly number[] = [1];

/** The key of a plugin package's package.json that carries its manifest. */
export const MANIFEST_KEY = 'integrationClient';

/**
 * A table every settings database of the host contains. Destinations that store into SQL refuse a database
 * holding it: the settings database and a storage database must never be the same (seed).
 */
export const SETTINGS_DATABASE_MARKER = 'ic_settings_meta';
