/**
 * The settings database: sites, destinations, schedules, cursors, the delivered-items ledger, run history and
 * failed items. SQLite in the data directory by default, or PostgreSQL / SQL Server by connection string (see
 * settings-location.ts); the same statements run on each through sql-connection.ts. Secrets are sealed by a
 * SecretBox before they are written and never leave this class unsealed except through `site()` /
 * `destination()` / `application()`, which the engine uses to connect. List methods return secrets masked.
 */
import { ConfigError, NotFoundError, type Operation } from '@integration-client/plugin-sdk';
import type {
  ApplicationSettings,
  DestinationSettings,
  Notification,
  ScheduleSettings,
  SiteSettings,
} from '@integration-client/schemas';
import { openFields, sealFields, type SecretBox } from '../secrets/secret-box.js';
import {
  insertReturningIdSql,
  markerExistsSql,
  META,
  migrationLockSql,
  migrations,
  pageSql,
  SCHEMA_VERSION,
  upsertRows,
  upsertSql,
} from './settings-schema.js';
import { openSqlConnection, sqliteTrouble, type Param, type SqlConnection } from './sql-connection.js';

const LEDGER_COLUMNS = ['destination', 'item', 'delivered_at', 'location'] as const;
const SITE_SECRETS = ['clientSecret', 'backupPassword'] as const;
export const MASK = '********';

/** A destination as stored: its settings plus which config fields are secret (from the plugin's schema). */
export interface StoredDestination extends DestinationSettings {
  readonly secretFields: readonly string[];
}

/** `stopped`: asked to stop (SIGTERM, Ctrl-C) before it was done; the next run goes on from its cursors. */
export type RunOutcome = 'succeeded' | 'partly-failed' | 'failed' | 'stopped';

export interface RunRecord {
  readonly id: number;
  readonly schedule: string;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly outcome?: RunOutcome;
  readonly counts: Record<string, number>;
  readonly error?: string;
}

/** A failed item still open (SettingsDb.failedItems): the latest of its failures. */
export interface FailedItem extends ItemKeyParts {
  /** The latest failure's row: what `ic failed retry|dismiss` take. */
  readonly id: number;
  readonly runId?: number;
  readonly destination: string;
  /** The item's key, as in the delivered-items ledger (itemKey). */
  readonly item: string;
  readonly code: string;
  readonly message: string;
  /** When it last failed, and first. */
  readonly at: string;
  readonly firstAt: string;
  /** Failed attempts recorded (a later run whose overlap brought it again, a retry). */
  readonly attempts: number;
}

/** An item failing with a retryable error now: in how many runs, since when (SettingsDb.noteRetryable). */
export interface RetryingItem extends ItemKeyParts {
  readonly destination: string;
  readonly item: string;
  readonly since: string;
  readonly runs: number;
  /** The latest retryable error (none for a count kept before settings schema 4). */
  readonly code?: string;
  readonly message?: string;
}

/** What an item's key names. */
export interface ItemKeyParts {
  readonly operation: Operation;
  readonly host: string;
  /** The session's (or presentation's) lsid; `?` when its entry in the report could not be read at all. */
  readonly lsid: string;
  /** A command-shell or Show My Screen recording's instance; none: every one of that session. */
  readonly instance?: number;
}

/** The id of a transfer (a site → destination pair) in cursors and logs. */
export const transferId = (site: string, destination: string) => `${site}->${destination}`;

/** What removing a site or destination forgot with it (SettingsDb.removeSite / removeDestination). */
export interface Forgotten {
  readonly cursors: number;
  /** Entries of the delivered-items ledger (a destination's). */
  readonly delivered: number;
  /** Rows of failed items (a destination's). */
  readonly failedItems: number;
}

/** The key of an item in the delivered-items ledger and the failed items: `operation|host|lsid[#instance]`. */
export const itemKey = (operation: Operation, host: string, lsid: string, instance?: number): string =>
  `${operation}|${host}|${lsid}${instance === undefined ? '' : `#${instance}`}`;

export function itemKeyParts(key: string): ItemKeyParts {
  const first = key.indexOf('|');
  const last = key.lastIndexOf('|');
  const [lsid, instance] = key.slice(last + 1).split('#');
  // Recorded before the key named the data type: an invalid entry of the session or presentation report.
  const op = key.slice(0, first);
  const operation = (op === 'session' ? 'session-data' : op === 'presentation' ? 'presentation-data' : op) as Operation;
  return {
    operation,
    host: key.slice(first + 1, last),
    lsid: lsid!,
    ...(instance !== undefined && instance !== '' && { instance: Number(instance) }),
  };
}

/** A ledger lookup waiting for its batch (see wasDelivered). */
interface Lookup {
  readonly destination: string;
  readonly item: string;
  resolve(found: boolean): void;
  reject(err: unknown): void;
}

/** Most items in one ledger lookup (SQL Server takes at most 2,100 parameters per statement). */
const LOOKUP_BATCH = 500;

/** How often prune() runs (at most). */
const PRUNE_EVERY_MS = 86_400_000;

/** Rows prune() removed. */
export interface Pruned {
  readonly delivered: number;
  readonly failedItems: number;
  readonly runs: number;
}

export class SettingsDb {
  private constructor(
    /** The connection; `ic settings migrate` copies through it. */
    readonly sql: SqlConnection,
    private readonly box: SecretBox,
  ) {}

  /** Opens (creating and upgrading) the settings database at `connection` (`sqlite:<path>`, `postgres://…`, …). */
  static async open(connection: string, box: SecretBox): Promise<SettingsDb> {
    return SettingsDb.on(await openSqlConnection(connection), box);
  }

  /** The settings database over an open connection (creating and upgrading its tables); closes it on failure. */
  static async on(sql: SqlConnection, box: SecretBox): Promise<SettingsDb> {
    try {
      await migrate(sql);
    } catch (err) {
      await sql.close();
      throw sql.dialect === 'sqlite' ? sqliteTrouble(sql.location.slice('sqlite:'.length), err) : err;
    }
    return new SettingsDb(sql, box);
  }

  /** Where the database is, without credentials. */
  get location(): string {
    return this.sql.location;
  }

  /** The database's identity: equal for two connections to the same database (ParsedConnection.key). */
  get key(): string {
    return this.sql.key;
  }

  schemaVersion(): number {
    return SCHEMA_VERSION;
  }

  #upsert(table: string, keys: readonly string[], values: Record<string, Param>): Promise<number> {
    const { sql, params } = upsertSql(this.sql.dialect, table, keys, values);
    return this.sql.run(sql, params);
  }

  async #one<T>(sql: string, params: readonly Param[]): Promise<T | undefined> {
    return (await this.sql.all<T>(sql, params))[0];
  }

  /** A value of the marker table (application settings, when prune() last ran). */
  async #meta(key: string): Promise<string | undefined> {
    return (await this.#one<{ value: string }>(`SELECT "value" FROM ${META} WHERE "key" = ?`, [key]))?.value;
  }

  // ---- application settings (notification, log, engine) ----

  /** The application settings, with the SMTP password opened. */
  async application(): Promise<ApplicationSettings> {
    const value = await this.#meta('application');
    const a = value ? (JSON.parse(value) as ApplicationSettings) : {};
    if (a.notification)
      a.notification = openFields(this.box, a.notification as unknown as Record<string, unknown>, [
        'password',
      ]) as unknown as Notification;
    return a;
  }

  async putApplication(a: ApplicationSettings): Promise<void> {
    const sealed: ApplicationSettings = { ...a };
    if (a.notification)
      sealed.notification = sealFields(this.box, a.notification as unknown as Record<string, unknown>, [
        'password',
      ]) as unknown as Notification;
    await this.#upsert(META, ['key'], { key: 'application', value: JSON.stringify(sealed) });
  }

  // ---- sites ----

  async putSite(site: SiteSettings): Promise<void> {
    const sealed = sealFields(this.box, site as unknown as Record<string, unknown>, SITE_SECRETS);
    await this.#upsert('site', ['name'], { name: site.name, settings: JSON.stringify(sealed) });
  }

  /** A site with its secrets, to connect with. */
  async site(name: string): Promise<SiteSettings> {
    const row = await this.#one<{ settings: string }>(`SELECT settings FROM site WHERE name = ?`, [name]);
    if (!row) throw new NotFoundError(`no site named ${JSON.stringify(name)}; see \`ic site list\``);
    return openFields(
      this.box,
      JSON.parse(row.settings) as Record<string, unknown>,
      SITE_SECRETS,
    ) as unknown as SiteSettings;
  }

  /** Every site, secrets masked. */
  async sites(): Promise<SiteSettings[]> {
    return (await this.sql.all<{ settings: string }>(`SELECT settings FROM site ORDER BY name`)).map(
      (r) => mask(JSON.parse(r.settings) as Record<string, unknown>, SITE_SECRETS) as unknown as SiteSettings,
    );
  }

  /**
   * Removes a site and the cursors of its transfers: a site added again under this name — perhaps another
   * appliance — starts from everything its appliance keeps instead of a position on the old one's clock. The
   * ledger stays (its keys name the host, and the destinations still hold what was delivered). So do its failed
   * items (`ic failed list` says no site has the host). The counts of its items still retried go, unless another
   * site has the same host: no run will try them again. Undefined: no such site.
   */
  async removeSite(name: string): Promise<Forgotten | undefined> {
    const destinations = (await this.destinations()).map((d) => d.name);
    const sites = await this.sites();
    const host = sites.find((s) => s.name === name)?.host;
    const forgotten = await this.#remove(
      'site',
      name,
      destinations.map((d) => transferId(name, d)),
    );
    // Item keys are `operation|host|lsid[#instance]` (itemKey): the host between the first two bars.
    if (forgotten && host !== undefined && !sites.some((s) => s.name !== name && s.host === host))
      await this.sql.run(`DELETE FROM retrying WHERE item LIKE ? ESCAPE '!'`, [`%|${host.replace(/[!%_]/g, '!$&')}|%`]);
    return forgotten;
  }

  // ---- destinations ----

  async putDestination(d: DestinationSettings, secretFields: readonly string[]): Promise<void> {
    const sealed = sealFields(this.box, d.config, secretFields);
    await this.#upsert('destination', ['name'], {
      name: d.name,
      plugin: d.plugin,
      config: JSON.stringify(sealed),
      secret_fields: JSON.stringify(secretFields),
    });
  }

  /** A destination with its secrets, to create the plugin instance with. */
  async destination(name: string): Promise<StoredDestination> {
    const row = await this.#one<DestRow>(`SELECT * FROM destination WHERE name = ?`, [name]);
    if (!row) throw new NotFoundError(`no destination named ${JSON.stringify(name)}; see \`ic destination list\``);
    const secretFields = JSON.parse(row.secret_fields) as string[];
    return {
      name: row.name,
      plugin: row.plugin,
      config: openFields(this.box, JSON.parse(row.config) as Record<string, unknown>, secretFields),
      secretFields,
    };
  }

  /** Every destination, secret config fields masked. */
  async destinations(): Promise<StoredDestination[]> {
    return (await this.sql.all<DestRow>(`SELECT * FROM destination ORDER BY name`)).map((row) => {
      const secretFields = JSON.parse(row.secret_fields) as string[];
      return {
        name: row.name,
        plugin: row.plugin,
        config: mask(JSON.parse(row.config) as Record<string, unknown>, secretFields),
        secretFields,
      };
    });
  }

  /**
   * Removes a destination and what described deliveries into it — the cursors of its transfers, its
   * delivered-items ledger and its failed items — so that a destination added again under this name, perhaps
   * writing somewhere else, is given everything the appliances keep rather than only what came after. (What it
   * already holds is not written twice: SQL replaces in place, files with the same bytes are skipped.) Undefined: no
   * such destination.
   */
  async removeDestination(name: string): Promise<Forgotten | undefined> {
    const sites = (await this.sites()).map((s) => s.name);
    return this.#remove(
      'destination',
      name,
      sites.map((s) => transferId(s, name)),
      true,
    );
  }

  async #remove(
    table: 'site' | 'destination',
    name: string,
    transfers: readonly string[],
    deliveries = false,
  ): Promise<Forgotten | undefined> {
    if (deliveries) await this.flushDelivered();
    return this.sql.transaction(async (tx) => {
      if (!(await tx.run(`DELETE FROM ${table} WHERE name = ?`, [name]))) return undefined;
      let cursors = 0;
      for (const t of transfers) cursors += await tx.run(`DELETE FROM "cursor" WHERE transfer = ?`, [t]);
      if (deliveries) await tx.run(`DELETE FROM retrying WHERE destination = ?`, [name]);
      return {
        cursors,
        delivered: deliveries ? await tx.run(`DELETE FROM delivered WHERE destination = ?`, [name]) : 0,
        failedItems: deliveries ? await tx.run(`DELETE FROM failed_item WHERE destination = ?`, [name]) : 0,
      };
    });
  }

  // ---- schedules ----

  async putSchedule(s: ScheduleSettings): Promise<void> {
    await this.#upsert('schedule', ['name'], { name: s.name, settings: JSON.stringify(s) });
  }

  async schedule(name: string): Promise<ScheduleSettings> {
    const row = await this.#one<{ settings: string }>(`SELECT settings FROM schedule WHERE name = ?`, [name]);
    if (!row) throw new NotFoundError(`no schedule named ${JSON.stringify(name)}; see \`ic schedule list\``);
    return JSON.parse(row.settings) as ScheduleSettings;
  }

  async schedules(): Promise<ScheduleSettings[]> {
    return (await this.sql.all<{ settings: string }>(`SELECT settings FROM schedule ORDER BY name`)).map(
      (r) => JSON.parse(r.settings) as ScheduleSettings,
    );
  }

  /** Every schedule's stored settings as text, by name: the scheduler re-reads these and parses only what changed. */
  async scheduleTexts(): Promise<Map<string, string>> {
    const rows = await this.sql.all<{ name: string; settings: string }>(
      `SELECT name, settings FROM schedule ORDER BY name`,
    );
    return new Map(rows.map((r) => [r.name, r.settings]));
  }

  async removeSchedule(name: string): Promise<boolean> {
    return (await this.sql.run(`DELETE FROM schedule WHERE name = ?`, [name])) > 0;
  }

  // ---- cursors and the delivered-items ledger ----

  /** Where a transfer's data type has been delivered up to (Unix seconds, appliance clock). */
  async cursor(transfer: string, dataType: Operation): Promise<number | undefined> {
    const row = await this.#one<{ position: number | string }>(
      `SELECT position FROM "cursor" WHERE transfer = ? AND data_type = ?`,
      [transfer, dataType],
    );
    return row ? Number(row.position) : undefined;
  }

  async setCursor(transfer: string, dataType: Operation, position: number): Promise<void> {
    await this.flushDelivered(); // a cursor never moves past ledger entries that are not written yet
    await this.#upsert('cursor', ['transfer', 'data_type'], {
      transfer,
      data_type: dataType,
      position,
      updated_at: new Date().toISOString(),
    });
  }

  async cursors(): Promise<{ transfer: string; dataType: string; position: number; updatedAt: string }[]> {
    const rows = await this.sql.all<{
      transfer: string;
      dataType: string;
      position: number | string;
      updatedAt: string;
    }>(
      `SELECT transfer, data_type AS "dataType", position, updated_at AS "updatedAt" FROM "cursor" ORDER BY transfer, data_type`,
    );
    return rows.map((r) => ({ ...r, position: Number(r.position) }));
  }

  /**
   * Whether the ledger holds `item` for `destination`. Lookups asked for in the same event-loop turn go to the
   * database as one query (up to 500 items): the engine asks once per item, and a statement each was ~5 % of the
   * main thread in the e2e benchmark.
   */
  wasDelivered(destination: string, item: string): Promise<boolean> {
    const k = `${destination}\0${item}`;
    if (this.#unflushed.has(k) || this.#writing.has(k)) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      this.#lookups.push({ destination, item, resolve, reject });
      if (this.#lookups.length >= LOOKUP_BATCH) this.#lookUp();
      else this.#lookupTimer ??= setImmediate(() => this.#lookUp());
    });
  }

  #lookUp(): void {
    if (this.#lookupTimer) clearImmediate(this.#lookupTimer);
    this.#lookupTimer = undefined;
    const batch = this.#lookups.splice(0);
    const byDestination = new Map<string, Lookup[]>();
    for (const l of batch) {
      const list = byDestination.get(l.destination);
      if (list) list.push(l);
      else byDestination.set(l.destination, [l]);
    }
    for (const [destination, lookups] of byDestination) {
      const items = [...new Set(lookups.map((l) => l.item))];
      this.sql
        .all<{ item: string }>(
          `SELECT item FROM delivered WHERE destination = ? AND item IN (${items.map(() => '?').join(', ')})`,
          [destination, ...items],
        )
        .then(
          (rows) => {
            const found = new Set(rows.map((r) => r.item));
            for (const l of lookups) l.resolve(found.has(l.item));
          },
          (err: unknown) => {
            for (const l of lookups) l.reject(err);
          },
        );
    }
  }

  readonly #lookups: Lookup[] = [];
  #lookupTimer: NodeJS.Immediate | undefined;

  /**
   * Records an acknowledged item. Entries are written in one transaction per event-loop turn (or per 500), not
   * one each: a crash can lose the entries of that last turn, which only means those items are delivered once
   * more — plugins are idempotent per item (ADR 008) — and `setCursor()` writes them first, so a cursor never
   * passes an unwritten entry. A failed write keeps its entries pending for the next flush.
   */
  markDelivered(destination: string, item: string, location?: string): void {
    this.#unflushed.set(`${destination}\0${item}`, [destination, item, new Date().toISOString(), location ?? null]);
    if (this.#unflushed.size >= 500) void this.flushDelivered().catch(() => undefined);
    else
      this.#flushTimer ??= setImmediate(() => {
        this.#flushTimer = undefined;
        void this.flushDelivered().catch(() => undefined);
      });
  }

  /** Writes the pending ledger entries now (after any write already under way). */
  flushDelivered(): Promise<void> {
    if (this.#flushTimer) clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    const next = this.#flushing.then(() => this.#writeLedger());
    this.#flushing = next.catch(() => undefined);
    return next;
  }

  async #writeLedger(): Promise<void> {
    if (!this.#unflushed.size) return;
    const rows = new Map(this.#unflushed);
    this.#unflushed.clear();
    for (const [k, v] of rows) this.#writing.set(k, v);
    try {
      await this.sql.transaction((tx) =>
        upsertRows(tx, 'delivered', ['destination', 'item'], LEDGER_COLUMNS, [...rows.values()]),
      );
    } catch (err) {
      // Kept pending: the next flush (at the latest the next setCursor) writes them or fails.
      for (const [k, v] of rows) if (!this.#unflushed.has(k)) this.#unflushed.set(k, v);
      throw err;
    } finally {
      for (const k of rows.keys()) this.#writing.delete(k);
    }
  }

  readonly #unflushed = new Map<string, [string, string, string, string | null]>();
  readonly #writing = new Map<string, [string, string, string, string | null]>();
  #flushing: Promise<void> = Promise.resolve();
  #flushTimer: NodeJS.Immediate | undefined;

  async deliveredCount(destination?: string): Promise<number> {
    await this.flushDelivered();
    const row = destination
      ? await this.#one<{ n: number | string }>(`SELECT COUNT(*) AS n FROM delivered WHERE destination = ?`, [
          destination,
        ])
      : await this.#one<{ n: number | string }>(`SELECT COUNT(*) AS n FROM delivered`, []);
    return Number(row?.n ?? 0);
  }

  // ---- runs ----

  async startRun(schedule: string): Promise<number> {
    const row = await this.#one<{ id: number | string }>(
      insertReturningIdSql(this.sql.dialect, 'run', ['schedule', 'started_at', 'counts']),
      [schedule, new Date().toISOString(), '{}'],
    );
    return Number(row!.id);
  }

  async finishRun(id: number, outcome: RunOutcome, counts: Record<string, number>, error?: string): Promise<void> {
    await this.sql.run(`UPDATE run SET ended_at = ?, outcome = ?, counts = ?, error = ? WHERE id = ?`, [
      new Date().toISOString(),
      outcome,
      JSON.stringify(counts),
      error ?? null,
      id,
    ]);
  }

  /** Marks runs of `schedule` that never finished (their process ended) as failed. Call holding its lease. */
  closeAbandonedRuns(schedule: string): Promise<number> {
    return this.sql.run(
      `UPDATE run SET ended_at = ?, outcome = 'failed', error = ? WHERE schedule = ? AND outcome IS NULL`,
      [new Date().toISOString(), 'the process running it ended before it finished; the next run caught up', schedule],
    );
  }

  async runs(schedule?: string, limit = 20): Promise<RunRecord[]> {
    const d = this.sql.dialect;
    const rows = schedule
      ? await this.sql.all<RunRow>(`SELECT * FROM run WHERE schedule = ? ORDER BY id DESC ${pageSql(d, limit)}`, [
          schedule,
        ])
      : await this.sql.all<RunRow>(`SELECT * FROM run ORDER BY id DESC ${pageSql(d, limit)}`);
    return rows.map((r) => ({
      id: Number(r.id),
      schedule: r.schedule,
      startedAt: r.started_at,
      endedAt: r.ended_at ?? undefined,
      outcome: (r.outcome ?? undefined) as RunOutcome | undefined,
      counts: JSON.parse(r.counts) as Record<string, number>,
      error: r.error ?? undefined,
    }));
  }

  /**
   * Takes a named lease for `ttlSeconds` unless another holder has one that has not expired (a crashed holder's
   * lease runs out, or is taken over at once when `isGone` says its holder no longer exists). Returns whether this
   * holder has it now. Compare-and-set: the row is replaced only if it still is what was read, so two processes
   * (or hosts sharing a PostgreSQL / SQL Server settings database) never both win.
   */
  async tryLease(
    name: string,
    holder: string,
    ttlSeconds: number,
    isGone: (holder: string) => boolean = () => false,
  ): Promise<boolean> {
    const now = Math.floor(Date.now() / 1000);
    const row = await this.#one<{ holder: string; expires_at: number | string }>(
      `SELECT holder, expires_at FROM lease WHERE name = ?`,
      [name],
    );
    if (!row)
      return this.sql
        .run(`INSERT INTO lease (name, holder, expires_at) VALUES (?, ?, ?)`, [name, holder, now + ttlSeconds])
        .then(
          (n) => n === 1,
          () => false, // another process inserted it first
        );
    const expires = Number(row.expires_at);
    if (row.holder !== holder && expires > now && !isGone(row.holder)) return false;
    const changed = await this.sql.run(
      `UPDATE lease SET holder = ?, expires_at = ? WHERE name = ? AND holder = ? AND expires_at = ?`,
      [holder, now + ttlSeconds, name, row.holder, expires],
    );
    return changed === 1;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.sql.run(`DELETE FROM lease WHERE name = ? AND holder = ?`, [name, holder]);
  }

  /** Leases held now (not expired): who runs what. */
  async leases(): Promise<{ name: string; holder: string; expiresAt: number }[]> {
    const rows = await this.sql.all<{ name: string; holder: string; expires_at: number | string }>(
      `SELECT name, holder, expires_at FROM lease WHERE expires_at > ? ORDER BY name`,
      [Math.floor(Date.now() / 1000)],
    );
    return rows.map((r) => ({ name: r.name, holder: r.holder, expiresAt: Number(r.expires_at) }));
  }

  /**
   * Notes that `item` failed in this run with a retryable error (kept as its latest): returns in how many runs it
   * has so far and since when (ISO time of the first). Called once per item and run.
   */
  async noteRetryable(
    destination: string,
    item: string,
    error?: { readonly code: string; readonly message: string },
    now = Date.now(),
  ): Promise<{ runs: number; since: string }> {
    const row = await this.#one<{ first_at: string; runs: number | string }>(
      `SELECT first_at, runs FROM retrying WHERE destination = ? AND item = ?`,
      [destination, item],
    );
    const seen = { runs: Number(row?.runs ?? 0) + 1, since: row?.first_at ?? new Date(now).toISOString() };
    await this.#upsert('retrying', ['destination', 'item'], {
      destination,
      item,
      first_at: seen.since,
      runs: seen.runs,
      code: error?.code ?? null,
      message: error?.message ?? null,
    });
    return seen;
  }

  /**
   * Items failing with a retryable error now (not delivered since, not given up on yet), oldest first: what holds
   * their data type's cursor back (`ic failed list`).
   */
  async retryingItems(o: { destination?: string } = {}): Promise<RetryingItem[]> {
    await this.flushDelivered();
    const rows = await this.sql.all<{
      destination: string;
      item: string;
      first_at: string;
      runs: number | string;
      code: string | null;
      message: string | null;
    }>(
      `SELECT r.destination, r.item, r.first_at, r.runs, r.code, r.message FROM retrying r
       WHERE NOT EXISTS (SELECT 1 FROM delivered d WHERE d.destination = r.destination AND d.item = r.item)
       ${o.destination === undefined ? '' : 'AND r.destination = ?'}
       ORDER BY r.first_at ${pageSql(this.sql.dialect, 1000)}`,
      o.destination === undefined ? [] : [o.destination],
    );
    return rows.map((r) => ({
      destination: r.destination,
      item: r.item,
      ...itemKeyParts(r.item),
      since: r.first_at,
      runs: Number(r.runs),
      ...(r.code !== null && { code: r.code }),
      ...(r.message !== null && { message: r.message }),
    }));
  }

  /** Forgets an item's retryable failures (it was given up on: a failed item now). */
  async forgetRetrying(destination: string, item: string): Promise<void> {
    await this.sql.run(`DELETE FROM retrying WHERE destination = ? AND item = ?`, [destination, item]);
  }

  async recordFailure(
    runId: number | undefined,
    destination: string,
    item: string,
    code: string,
    message: string,
  ): Promise<void> {
    await this.sql.run(
      `INSERT INTO failed_item (run_id, destination, item, code, message, at) VALUES (?, ?, ?, ?, ?, ?)`,
      [runId ?? null, destination, item, code, message, new Date().toISOString()],
    );
  }

  /** Every failure recorded, newest first (one row per attempt; see failedItems for what is still open). */
  async failures(
    limit = 50,
  ): Promise<{ destination: string; item: string; code: string; message: string; at: string }[]> {
    const d = this.sql.dialect;
    return this.sql.all(
      `SELECT destination, item, code, message, at FROM failed_item ORDER BY id DESC ${pageSql(d, limit)}`,
    );
  }

  /**
   * The failed items still open, newest first: one per destination and item, with its latest failure and how many
   * attempts failed. An item the ledger holds for that destination (a later run's overlap, or `ic failed retry`,
   * delivered it) is not open any more.
   */
  async failedItems(o: { destination?: string; limit?: number } = {}): Promise<FailedItem[]> {
    await this.flushDelivered();
    const rows = await this.sql.all<{
      id: number | string;
      runId: number | string | null;
      destination: string;
      item: string;
      code: string;
      message: string;
      at: string;
      firstAt: string;
      attempts: number | string;
    }>(
      `SELECT f.id, f.run_id AS "runId", f.destination, f.item, f.code, f.message, f.at, g.first_at AS "firstAt", g.attempts
       FROM failed_item f
       JOIN (SELECT MAX(id) AS id, MIN(at) AS first_at, COUNT(*) AS attempts FROM failed_item GROUP BY destination, item) g
         ON g.id = f.id
       WHERE NOT EXISTS (SELECT 1 FROM delivered d WHERE d.destination = f.destination AND d.item = f.item)
       ${o.destination === undefined ? '' : 'AND f.destination = ?'}
       ORDER BY f.id DESC ${pageSql(this.sql.dialect, o.limit ?? 1000)}`,
      o.destination === undefined ? [] : [o.destination],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      ...(r.runId !== null && { runId: Number(r.runId) }),
      destination: r.destination,
      item: r.item,
      ...itemKeyParts(r.item),
      code: r.code,
      message: r.message,
      at: r.at,
      firstAt: r.firstAt,
      attempts: Number(r.attempts),
    }));
  }

  /** Open failed items per destination (for /metrics). */
  failedItemCounts(): Promise<Record<string, number>> {
    return this.#undeliveredCounts('failed_item');
  }

  /** Items still retried per destination (for /metrics and `ic service status`; see retryingItems). */
  retryingCounts(): Promise<Record<string, number>> {
    return this.#undeliveredCounts('retrying');
  }

  /** Items of `table` the ledger does not hold (not delivered since), per destination. */
  async #undeliveredCounts(table: 'failed_item' | 'retrying'): Promise<Record<string, number>> {
    await this.flushDelivered();
    const rows = await this.sql.all<{ destination: string; n: number | string }>(
      `SELECT f.destination, COUNT(DISTINCT f.item) AS n FROM ${table} f
       WHERE NOT EXISTS (SELECT 1 FROM delivered d WHERE d.destination = f.destination AND d.item = f.item)
       GROUP BY f.destination`,
    );
    return Object.fromEntries(rows.map((r) => [r.destination, Number(r.n)]));
  }

  /** Takes items off the failed list (every attempt recorded for each): delivered since, or given up on. */
  async dropFailedItems(items: readonly { destination: string; item: string }[]): Promise<number> {
    let n = 0;
    await this.sql.transaction(async (tx) => {
      for (const i of items)
        n += await tx.run(`DELETE FROM failed_item WHERE destination = ? AND item = ?`, [i.destination, i.item]);
    });
    return n;
  }

  // ---- housekeeping ----

  /** What the settings database holds that grows with use, and when prune() last ran (ic settings show). */
  async holdings(): Promise<{ ledgerEntries: number; runs: number; lastPrunedAt?: string }> {
    const runs = await this.#one<{ n: number | string }>(`SELECT COUNT(*) AS n FROM run`, []);
    const lastPrunedAt = await this.#meta('pruned_at');
    return {
      ledgerEntries: await this.deliveredCount(),
      runs: Number(runs?.n ?? 0),
      ...(lastPrunedAt && { lastPrunedAt }),
    };
  }

  /**
   * Removes what need not be kept any more, at most once per `everyMs` across every process on this database
   * (the time is kept in the marker table; two processes due at once both prune, which is harmless): ledger
   * entries of items delivered more than `ledgerDays` ago — with the failed-item attempts those entries had closed,
   * which would otherwise be listed as open again — and runs that ended more than `runHistoryDays` ago, except each
   * schedule's latest (what the scheduler's catch-up reads). Returns the rows removed, or undefined when not due.
   * An appliance keeps sessions at most 90 days, so no run can bring an item again once `ledgerDays` (at least
   * 91) have passed since its delivery (ADR 008).
   */
  async prune(
    o: { ledgerDays: number; runHistoryDays: number; everyMs?: number },
    now = Date.now(),
  ): Promise<Pruned | undefined> {
    const last = await this.#meta('pruned_at');
    if (last && now - Date.parse(last) < (o.everyMs ?? PRUNE_EVERY_MS)) return undefined;
    await this.#upsert(META, ['key'], { key: 'pruned_at', value: new Date(now).toISOString() });
    await this.flushDelivered();
    const before = (days: number) => new Date(now - days * 86_400_000).toISOString();
    const ledgerBefore = before(o.ledgerDays);
    return this.sql.transaction(async (tx) => {
      // An item that first failed that long ago is past the appliance's retention: no run brings it again.
      await tx.run(`DELETE FROM retrying WHERE first_at < ?`, [ledgerBefore]);
      return {
        failedItems: await tx.run(
          `DELETE FROM failed_item WHERE EXISTS (SELECT 1 FROM delivered d WHERE d.destination = failed_item.destination AND d.item = failed_item.item AND d.delivered_at < ?)`,
          [ledgerBefore],
        ),
        delivered: await tx.run(`DELETE FROM delivered WHERE delivered_at < ?`, [ledgerBefore]),
        runs: await tx.run(
          `DELETE FROM run WHERE ended_at < ? AND id NOT IN (SELECT MAX(id) FROM run GROUP BY schedule)`,
          [before(o.runHistoryDays)],
        ),
      };
    });
  }

  async close(): Promise<void> {
    try {
      await this.flushDelivered();
    } finally {
      await this.sql.close();
    }
  }
}

/** Creates or upgrades the tables, one migration at a time, under a lock that serialises concurrent openers. */
async function migrate(sql: SqlConnection): Promise<void> {
  const d = sql.dialect;
  await sql.transaction(async (tx) => {
    const lock = migrationLockSql(d);
    if (lock) await tx.run(lock);
    const hasMeta = (await tx.all(markerExistsSql(d), [META])).length > 0;
    const version = hasMeta
      ? Number(
          (await tx.all<{ value: string }>(`SELECT "value" FROM ${META} WHERE "key" = 'schema_version'`))[0]?.value ??
            0,
        )
      : 0;
    if (version > SCHEMA_VERSION)
      throw new ConfigError(
        `the settings database ${sql.location} has schema ${version}, newer than this version of ic knows (${SCHEMA_VERSION}); upgrade ic`,
      );
    const steps = migrations(d);
    for (let v = version; v < steps.length; v++) for (const statement of steps[v]!) await tx.run(statement);
    const { sql: text, params } = upsertSql(d, META, ['key'], { key: 'schema_version', value: String(SCHEMA_VERSION) });
    await tx.run(text, params);
  });
}

interface DestRow {
  name: string;
  plugin: string;
  config: string;
  secret_fields: string;
}
interface RunRow {
  id: number | string;
  schedule: string;
  started_at: string;
  ended_at: string | null;
  outcome: string | null;
  counts: string;
  error: string | null;
}

function mask(obj: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out = { ...obj };
  for (const f of fields) if (out[f] !== undefined) out[f] = MASK;
  return out;
}
