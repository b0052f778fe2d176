import {
  applicationSchema,
  destinationSchema,
  pluginManifestSchema,
  scheduleSchema,
  siteSchema,
  type ApplicationSettings,
  type DestinationSettings,
  type ScheduleSettings,
  type SiteSettings,
} from '@integration-client/schemas';
import {
  checkValid,
  createAjv,
  DestinationError,
  type ConfigError,
  type Operation,
  type PluginManifest,
} from '@integration-client/plugin-sdk';
import type { ValidateFunction } from 'ajv';

export type { ConfigError };

/** Largest schedule period: seven days, as the seed allows. */
const MAX_PERIOD_MINUTES = 7 * 24 * 60;
const UNIT_MINUTES = { m: 1, h: 60, d: 24 * 60 } as const;

/** Minutes in a schedule period such as `15m`, `2h`, `7d`. */
export function periodMinutes(period: string): number {
  const unit = period.slice(-1) as keyof typeof UNIT_MINUTES;
  return Number(period.slice(0, -1)) * UNIT_MINUTES[unit];
}

/**
 * Validates settings objects against their JSON Schemas (defaults applied) and the few rules a schema cannot
 * say. Every failure is IC_ERR_CONFIG_INVALID naming the field, e.g. `site "main" is invalid: /host: must match …`.
 */
export class SettingsValidator {
  readonly #site: ValidateFunction;
  readonly #destination: ValidateFunction;
  readonly #schedule: ValidateFunction;
  readonly #application: ValidateFunction;

  constructor() {
    const ajv = createAjv({ useDefaults: true });
    ajv.addSchema(pluginManifestSchema);
    this.#site = ajv.compile(siteSchema);
    this.#destination = ajv.compile(destinationSchema);
    this.#schedule = ajv.compile(scheduleSchema);
    this.#application = ajv.compile(applicationSchema);
  }

  site(input: unknown): SiteSettings {
    return named(checkValid<SiteSettings>(this.#site, structuredClone(input), `site ${label(input)}`), 'site');
  }

  destination(input: unknown): DestinationSettings {
    return named(
      checkValid<DestinationSettings>(this.#destination, structuredClone(input), `destination ${label(input)}`),
      'destination',
    );
  }

  schedule(input: unknown): ScheduleSettings {
    const what = `schedule ${label(input)}`;
    const schedule = checkValid<ScheduleSettings>(this.#schedule, structuredClone(input), what);
    const minutes = periodMinutes(schedule.period);
    const issues = [];
    if (minutes > MAX_PERIOD_MINUTES) issues.push({ path: '/period', message: 'must be at most 7d' });
    if (schedule.timeOfDay !== undefined && minutes % UNIT_MINUTES.d !== 0)
      issues.push({ path: '/timeOfDay', message: 'is only allowed for periods in whole days' });
    // Two transfers of one pair would move its data at once (they share its cursors and ledger) and race each other
    // in the destination: a pair's data types go in one transfer.
    schedule.transfers.forEach((t, i) => {
      const first = schedule.transfers.findIndex((o) => o.site === t.site && o.destination === t.destination);
      if (first < i)
        issues.push({
          path: `/transfers/${i}`,
          message: `repeats site ${JSON.stringify(t.site)} → destination ${JSON.stringify(t.destination)} of transfer ${first + 1}: name all the data types of a pair in one transfer (${t.site}:${t.destination}:${[...new Set([...schedule.transfers[first]!.dataTypes, ...t.dataTypes])].join(',')})`,
        });
    });
    if (issues.length) checkValid(rejectWith(issues), schedule, what);
    return schedule;
  }

  application(input: unknown): ApplicationSettings {
    return checkValid<ApplicationSettings>(this.#application, structuredClone(input ?? {}), 'application settings');
  }

  /**
   * Checks application settings as application() does and returns them as given, without the schema's defaults:
   * what is stored. A default changed in a later version then applies to every setting nobody chose.
   */
  applicationToStore(input: unknown): ApplicationSettings {
    this.application(input);
    return input ?? {};
  }
}

/**
 * Refuses a site or destination name that would be read as two: `:` separates `--transfer site:destination:types`,
 * `->` joins a transfer's id (site `a->b` with destination `c` and site `a` with destination `b->c` would share a
 * cursor), and control characters or spaces at either end cannot be told apart when shown.
 */
function named<T extends { name: string }>(settings: T, kind: 'site' | 'destination'): T {
  const n = settings.name;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[:\u0000-\u001f\u007f]|->/.test(n) || n !== n.trim())
    checkValid(
      rejectWith([
        {
          path: '/name',
          message: `must not contain ':' (it separates --transfer site:destination:types), '->' (it joins a transfer's id), control characters, or spaces at either end`,
        },
      ]),
      settings,
      `${kind} ${label(settings)}`,
    );
  return settings;
}

function label(input: unknown): string {
  const name = (input as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? JSON.stringify(name) : '(unnamed)';
}

/** A validate function that always fails with the given issues, so rule checks report like schema checks. */
function rejectWith(issues: { path: string; message: string }[]): ValidateFunction {
  const fn = (() => false) as unknown as ValidateFunction;
  fn.errors = issues.map((i) => ({
    instancePath: i.path,
    message: i.message,
    keyword: 'rule',
    schemaPath: '#',
    params: {},
  }));
  return fn;
}

/** What a destination can take: its plugin's manifest id and declared operations. */
export interface DestinationCapabilities {
  readonly plugin: string;
  readonly operations: readonly Operation[];
}

const CANNOT_BE_SQL: readonly Operation[] = [
  'session-recording',
  'command-shell-recording',
  'show-my-screen-recording',
  'presentation-recording',
  'site-backup',
];

/**
 * Refuses a schedule that routes a data type to a destination whose plugin does not declare it
 * (IC_ERR_DESTINATION_OPERATION_UNSUPPORTED), saying which transfer, which types, what the destination takes and
 * what to do — e.g. recordings sent to SQL, which cannot store them (seed).
 */
export function checkRouting(
  schedule: Pick<ScheduleSettings, 'name' | 'transfers'>,
  destinationOf: (name: string) => DestinationCapabilities | undefined,
): void {
  schedule.transfers.forEach((t, i) => {
    const dest = destinationOf(t.destination);
    if (!dest) return;
    const refused = t.dataTypes.filter((op) => !dest.operations.includes(op));
    if (!refused.length) return;
    const binary = refused.filter((op) => CANNOT_BE_SQL.includes(op));
    const hint =
      dest.plugin === 'sql' && binary.length
        ? ' Recordings and site backups cannot be stored in a SQL database (seed): route them to a file-system destination in a separate transfer.'
        : ' Remove them from the transfer or choose a destination that declares them.';
    throw new DestinationError(
      'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED',
      `schedule ${JSON.stringify(schedule.name)}, transfer ${i + 1}: destination ${JSON.stringify(t.destination)} (plugin ${dest.plugin}) does not take ${refused.join(', ')}; it declares ${dest.operations.join(', ')}.${hint}`,
      { details: { transfer: i, destination: t.destination, refused } },
    );
  });
}

/** The capabilities a manifest declares. */
export const capabilitiesOf = (m: PluginManifest): DestinationCapabilities => ({
  plugin: m.id,
  operations: m.operations,
});
