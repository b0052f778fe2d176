/**
 * The one catalogue of error codes. Every `IC_ERR_*` code the project raises is listed here, with its family and
 * whether a failure with it is worth retrying. `docs/errors.md` mirrors this table; a test fails when they drift.
 * Codes are never reused for another meaning.
 */
export const ERROR_FAMILIES = [
  'config',
  'not-found',
  'site-access',
  'destination',
  'plugin',
  'stopped',
  'internal',
] as const;
/** A family groups codes that callers handle alike. */
export type ErrorFamily = (typeof ERROR_FAMILIES)[number];

/** One catalogue entry. */
export interface ErrorCodeInfo {
  readonly family: ErrorFamily;
  readonly retryable: boolean;
  /** What the code means and what to do about it, in one sentence. */
  readonly summary: string;
}

const code = (family: ErrorFamily, retryable: boolean, summary: string): ErrorCodeInfo => ({
  family,
  retryable,
  summary,
});

/** Every error code, keyed by code. */
export const ERROR_CODES = {
  IC_ERR_CONFIG_INVALID: code(
    'config',
    false,
    'A settings object or plugin config does not match its schema; fix the named field.',
  ),
  IC_ERR_USAGE: code(
    'config',
    false,
    "The command line is not one `ic` knows (unknown command or option, a missing argument); see the command's `--help`.",
  ),
  IC_ERR_NOT_FOUND: code(
    'not-found',
    false,
    'A named site, destination, schedule or plugin does not exist; check the name.',
  ),
  IC_ERR_SCHEDULE_BUSY: code(
    'config',
    true,
    'The schedule is already running (in the service or another `ic schedule run`); wait for that run to finish.',
  ),
  IC_ERR_SERVICE_RUNNING: code(
    'config',
    false,
    'A service already runs on this data directory, or another program holds the health port; stop it (`ic service status` names its pid) or give `ic service run` another `--health-port`.',
  ),
  IC_ERR_SERVICE_NOT_STARTED: code(
    'config',
    true,
    '`ic service start` started the service but it exited or did not serve within 30 s; the message carries what it printed, its log has the rest (`ic logs --service`).',
  ),
  IC_ERR_SERVICE_NOT_STOPPED: code(
    'config',
    true,
    '`ic service stop` found the service still finishing its deliveries after `--timeout`, or could not confirm the pid in service.json is the service (nothing is signalled then); wait, or stop the named pid yourself.',
  ),
  IC_ERR_SITE_AUTH_FAILED: code(
    'site-access',
    false,
    'The appliance refused the client id/secret; update the site credentials.',
  ),
  IC_ERR_SITE_FORBIDDEN: code(
    'site-access',
    false,
    'The API account lacks a permission (reporting, recordings or backup); grant it on the appliance.',
  ),
  IC_ERR_SITE_RATE_LIMITED: code('site-access', true, 'The appliance answered 429; the client backs off and retries.'),
  IC_ERR_SITE_UNAVAILABLE: code(
    'site-access',
    true,
    'The appliance answered 5xx, reset the connection, timed out or truncated a body; retried with backoff.',
  ),
  IC_ERR_SITE_UNREACHABLE: code(
    'site-access',
    true,
    'The site host cannot be resolved or connected to; check the host name and network.',
  ),
  IC_ERR_SITE_TLS: code(
    'site-access',
    false,
    'The site certificate is not trusted; add its CA file to the site settings.',
  ),
  IC_ERR_SITE_API_ERROR: code('site-access', false, 'The appliance answered with an <error> document; read its text.'),
  IC_ERR_SITE_REPORT_MALFORMED: code(
    'site-access',
    true,
    'A report is not well-formed XML or was cut short (often a truncated download); it is fetched again.',
  ),
  IC_ERR_SITE_REPORT_REJECTED: code(
    'site-access',
    false,
    'A report was refused as hostile: a DTD or entity declaration, nesting deeper than the limit, or a text node over the size limit.',
  ),
  IC_ERR_SITE_SESSION_INVALID: code(
    'site-access',
    false,
    'One session of a report cannot be read (no lsid, no start time); it is reported and the other sessions go on.',
  ),
  IC_ERR_SITE_BODY_MISMATCH: code(
    'site-access',
    true,
    'A download ended with fewer or more bytes than Content-Length announced, or an XML error came instead of a file; retried.',
  ),
  IC_ERR_DESTINATION_WRITE_FAILED: code(
    'destination',
    true,
    'A destination could not store an item for a transient reason; it is retried and nothing is acknowledged.',
  ),
  IC_ERR_DESTINATION_UNAVAILABLE: code(
    'destination',
    true,
    'A destination (database, share) cannot be reached, or its database is not there; the transfer stops, its cursors stay, and the next run retries.',
  ),
  IC_ERR_DESTINATION_FULL: code(
    'destination',
    true,
    'The destination has no space left (disk full, quota, database file or log full); free space — the transfer stops, its cursors stay, and the next run retries.',
  ),
  IC_ERR_DESTINATION_PERMISSION_DENIED: code(
    'destination',
    true,
    'The destination refused the write for lack of permission, or takes no writes (read-only); grant it or make it writable — the transfer stops, its cursors stay, and the next run delivers.',
  ),
  IC_ERR_DESTINATION_BAD_ITEM: code(
    'destination',
    false,
    'The destination cannot store this item as it is (bad value, too long); the item is reported, the others go on.',
  ),
  IC_ERR_DESTINATION_OPERATION_UNSUPPORTED: code(
    'destination',
    false,
    'A data type was routed to a destination that does not declare that operation; change the transfer.',
  ),
  IC_ERR_PLUGIN_PACKAGE_UNREADABLE: code(
    'plugin',
    false,
    "A plugin package's package.json is missing or not valid JSON; reinstall the package.",
  ),
  IC_ERR_PLUGIN_MANIFEST_MISSING: code(
    'plugin',
    false,
    'The package.json has no `integrationClient` key, so the package is not a plugin.',
  ),
  IC_ERR_PLUGIN_MANIFEST_INVALID: code(
    'plugin',
    false,
    'The `integrationClient` manifest does not match the manifest schema; fix the named field.',
  ),
  IC_ERR_PLUGIN_HOST_RANGE: code(
    'plugin',
    false,
    "The host version is outside the plugin's `host` range; install a plugin version made for this host.",
  ),
  IC_ERR_PLUGIN_API_VERSION: code(
    'plugin',
    false,
    'The plugin targets an SDK api version this host does not support; upgrade the plugin or the host.',
  ),
  IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID: code(
    'plugin',
    false,
    "The plugin's config schema is missing or is not a valid JSON Schema; the plugin author must fix it.",
  ),
  IC_ERR_PLUGIN_LOAD_FAILED: code('plugin', false, "Importing the plugin's entry module threw; see the cause."),
  IC_ERR_PLUGIN_NOT_A_DESTINATION: code(
    'plugin',
    false,
    'The entry module does not default-export an object built by defineDestination().',
  ),
  IC_ERR_PLUGIN_ID_MISMATCH: code('plugin', false, 'The id given to defineDestination() differs from the manifest id.'),
  IC_ERR_PLUGIN_OPERATION_MISSING: code(
    'plugin',
    false,
    'The manifest declares an operation the plugin has no handler for.',
  ),
  IC_ERR_PLUGIN_OPERATION_UNDECLARED: code(
    'plugin',
    false,
    'The plugin has a handler for an operation its manifest does not declare.',
  ),
  IC_ERR_PLUGIN_CREATE_FAILED: code(
    'plugin',
    true,
    "The plugin's create() threw or returned something that is not a destination.",
  ),
  IC_ERR_PLUGIN_CHECK_INVALID: code('plugin', false, 'check() did not resolve to a well-formed CheckResult.'),
  IC_ERR_PLUGIN_ACK_INVALID: code(
    'plugin',
    false,
    'A handler resolved to something that is not a well-formed acknowledgement; nothing is counted as delivered.',
  ),
  IC_ERR_PLUGIN_STREAM_NOT_CONSUMED: code(
    'plugin',
    false,
    'A handler acknowledged a recording or backup without reading its stream to the end.',
  ),
  IC_ERR_PLUGIN_ERROR_UNCODED: code(
    'plugin',
    true,
    'A plugin failed with an error that carries no IC_ERR_* code; it is wrapped and treated as retryable.',
  ),
  IC_ERR_PLUGIN_CRASHED: code(
    'plugin',
    true,
    "The plugin's worker threw an uncaught error, exited or ran out of memory; the call is retried and the plugin restarted with backoff. details.inFlight: the calls it took down (several are delivered again one at a time; one alone counts against its item).",
  ),
  IC_ERR_PLUGIN_TIMEOUT: code(
    'plugin',
    true,
    'A plugin call ran past its timeout (pluginCallTimeoutSeconds); a plugin that stops answering is restarted. details.inFlight: the calls in the plugin then, as for a crash.',
  ),
  IC_ERR_PLUGIN_ID_TAKEN: code(
    'plugin',
    false,
    'Another installed or bundled plugin already has this id; remove one of them.',
  ),
  IC_ERR_PLUGIN_INSTALL_FAILED: code(
    'plugin',
    false,
    'npm could not fetch or install the package (name, version, registry, network); see the npm output in the message.',
  ),
  IC_ERR_RUN_STOPPED: code(
    'stopped',
    true,
    'The run was asked to stop (SIGTERM, SIGINT, Ctrl-C) before its window was complete; what was under way finished, the cursors stay before what was not delivered and the next run goes on from there. Logged as a warning, not mailed.',
  ),
  IC_ERR_SETTINGS_DB_UNAVAILABLE: code(
    'internal',
    true,
    'The settings database could not be read or written (its server is down, the disk is full); the run keeps its cursors and the next run catches up.',
  ),
  IC_ERR_INTERNAL: code('internal', false, 'A bug in the integration client; please report it with the log.'),
} as const satisfies Record<`IC_ERR_${string}`, ErrorCodeInfo>;

/** Any catalogued error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `value` is a catalogued error code. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * Codes that say the destination as a whole cannot take items now — it cannot be reached, it is full, it refuses
 * for lack of permission — rather than that one item is bad. The kernel stops a transfer at the first of them (one
 * error logged, nothing more of the window tried, cursors kept; the next run retries), and a plugin that writes
 * batches fails the whole batch with it instead of trying its items one by one.
 */
export const DESTINATION_WIDE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'IC_ERR_DESTINATION_UNAVAILABLE',
  'IC_ERR_DESTINATION_FULL',
  'IC_ERR_DESTINATION_PERMISSION_DENIED',
]);

/**
 * Codes that say the appliance cannot be used now — it cannot be reached, it refuses the credentials, the API
 * account lacks a permission, its certificate is not trusted — rather than that one download failed. The kernel
 * stops a transfer at the first of them as it does for DESTINATION_WIDE_CODES: one error, no further download,
 * cursors kept, so that once it is fixed the next run catches up (a recording refused for lack of permission is not
 * passed by as failed for good).
 */
export const SITE_WIDE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'IC_ERR_SITE_UNREACHABLE',
  'IC_ERR_SITE_AUTH_FAILED',
  'IC_ERR_SITE_FORBIDDEN',
  'IC_ERR_SITE_TLS',
]);
