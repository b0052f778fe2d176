import { access, constants, readFile } from 'node:fs/promises';
import { ConfigError } from '@integration-client/plugin-sdk';
import { pairLease, transferId, type Forgotten } from '@integration-client/core';
import { icHome, openApp, type App } from '../app.js';
import { out } from '../output.js';

/** Options every settings command takes. */
export interface HomeOptions {
  readonly home?: string;
  readonly json?: boolean;
}

/** Opens the data directory, runs `fn`, closes it; returns fn's exit code. */
export async function withApp(o: HomeOptions, fn: (app: App) => Promise<number>): Promise<number> {
  const app = await openApp(icHome(o.home));
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/** `--config` as JSON text or a JSON file. */
export async function readJsonArg(arg: string, what: string): Promise<Record<string, unknown>> {
  const text = arg.trimStart().startsWith('{')
    ? arg
    : await readFile(arg, 'utf8').catch((err: Error) => {
        throw new ConfigError(`cannot read ${what} file ${arg}: ${err.message}`);
      });
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${what} is not a JSON object: ${(err as Error).message}`);
  }
}

/** Collects a repeatable option. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `key=value` pairs; values read as the schema's property type (boolean, integer, number), else text. */
export function parseSets(sets: readonly string[], schema: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const props = (schema.properties ?? {}) as Record<string, { type?: string }>;
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${JSON.stringify(s)} must look like key=value`);
    const key = s.slice(0, eq);
    const raw = s.slice(eq + 1);
    const type = props[key]?.type;
    out[key] =
      type === 'boolean' && /^(true|false)$/.test(raw)
        ? raw === 'true'
        : (type === 'integer' || type === 'number') && raw.trim() !== '' && !Number.isNaN(Number(raw))
          ? Number(raw)
          : raw;
  }
  return out;
}

/** Refuses a file named by `option` that this process cannot read (checked before anything is saved or opened). */
export async function readableFile(option: string, file: string, hint = ''): Promise<void> {
  await access(file, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`${option} ${file} cannot be read (${err.code ?? err.message})${hint}`);
  });
}

/**
 * Refuses to remove a site or destination that a schedule's transfers still name, or that a run is moving now (a
 * schedule removed while its run goes on, `ic failed retry`): that run would write cursors and ledger entries after
 * the removal forgot them, and a destination added again under the name would inherit them.
 */
export async function refuseIfScheduled(app: App, kind: 'site' | 'destination', name: string): Promise<void> {
  const used = (await app.db.schedules()).filter((s) => s.transfers.some((t) => t[kind] === name));
  if (used.length)
    throw new ConfigError(
      `${kind} ${JSON.stringify(name)} is used by schedule(s) ${used.map((s) => s.name).join(', ')}: take it out of their transfers first (\`ic schedule edit ${used[0]!.name} --transfer …\` replaces them all) or remove the schedule (\`ic schedule remove ${used[0]!.name}\`)`,
    );
  const pairs =
    kind === 'site'
      ? (await app.db.destinations()).map((d) => [name, d.name] as const)
      : (await app.db.sites()).map((s) => [s.name, name] as const);
  const held = new Map((await app.db.leases()).map((l) => [l.name, l.holder]));
  for (const [site, destination] of pairs) {
    const holder = held.get(pairLease(site, destination));
    if (holder !== undefined)
      throw new ConfigError(
        `${kind} ${JSON.stringify(name)} is being moved by a run now (${transferId(site, destination)}: ${holder}); try again when it has finished (\`ic service status\`; a run that crashed lets go within 2 minutes)`,
      );
  }
}

/** Bytes readable: `512 B`, `81.8 MiB`, `1.2 GiB`. */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}

/** Prints rows as an aligned table. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The notification settings as shown: the SMTP password masked. */
export function maskPassword<T extends { password?: string }>(n: T): T {
  return n.password === undefined ? n : { ...n, password: '********' };
}

/**
 * Prints settings in effect as aligned `key  value` lines; a key that is not in `stored` (nor in `given`, values
 * that are not settings) is marked `(default)`.
 */
export function printSettings(shown: object, stored: object, given: readonly string[] = []): void {
  const width = Math.max(...Object.keys(shown).map((k) => k.length));
  for (const [k, v] of Object.entries(shown)) {
    const value = Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    const note = k in stored || given.includes(k) ? '' : '  (default)';
    out.line(`${k.padEnd(width)}  ${value}${note}`);
  }
}

/** `site "x" removed`, and what was forgotten with it. */
export function removedLine(kind: 'site' | 'destination', name: string, f: Forgotten | undefined): void {
  const what = [
    f?.cursors && `${f.cursors} cursor(s)`,
    f?.delivered && `${f.delivered} delivered-items ledger entries`,
    f?.failedItems && `${f.failedItems} failed-item record(s)`,
  ].filter(Boolean);
  out.line(
    `${kind} ${JSON.stringify(name)} removed${what.length ? `, with its ${what.join(', ')}: ${kind === 'site' ? 'a site added again under this name starts from everything its appliance keeps' : 'a destination added again under this name is given everything the appliances keep'}` : ''}`,
  );
}
