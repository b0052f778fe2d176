/**
 * The settings database (embedded default: SQLite `settings.db` in the data directory). Holds sites,
 * destinations, schedules, cursors, the delivered-items ledger, run history and failed items. Secrets are
 * sealed by a SecretBox before they are written and never leave this class unsealed except through `site()` /
 * `destination()`, which the engine uses to connect. List methods return secrets masked.
 *
 * Not yet: PostgreSQL / SQL Server settings databases and `ic settings migrate` (see the engine issue).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { NotFoundError, SETTINGS_DATABASE_MARKER, type Operation } from '@integration-client/plugin-sdk';
import type {
  ApplicationSettings,
  DestinationSettings,
  Notification,
  ScheduleSettings,
  SiteSettings,
} from '@integration-client/schemas';
import { openFields, sealFields, type SecretBox } from '../secrets/secret-box.js';

const SITE_SECRETS = ['clientSecret', 'backupPassword'] as const;
export const MASK = '********';

/** A destination as stored: its settings plus which config fields are secret (from the plugin's schema). */
export interface StoredDestination extends DestinationSettings {
  readonly secretFields: readonly string[];
}

export type RunOutcome = 'succeeded' | 'partly-failed' | 'failed';

export interface RunRecord {
  readonly id: number;
  readonly schedule: string;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly outcome?: RunOutcome;
  readonly counts: Record<string, number>;
  readonly error?: string;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE ${SETTINGS_DATABASE_MARKER} (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE site (name TEXT PRIMARY KEY, settings TEXT NOT NULL);
   CREATE TABLE destination (name TEXT PRIMARY KEY, plugin TEXT NOT NULL, config TEXT NOT NULL, secret_fields TEXT NOT NULL);
   CREATE TABLE schedule (name TEXT PRIMARY KEY, settings TEXT NOT NULL);
   CREATE TABLE cursor (transfer TEXT NOT NULL, data_type TEXT NOT NULL, position INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (transfer, data_type));
   CREATE TABLE delivered (destination TEXT NOT NULL, item TEXT NOT NULL, delivered_at TEXT NOT NULL, location TEXT, PRIMARY KEY (destination, item));
   CREATE TABLE run (id INTEGER PRIMARY KEY, schedule TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, counts TEXT NOT NULL DEFAULT '{}', error TEXT);
   CREATE INDEX ix_run_schedule ON run (schedule, id);
   CREATE TABLE failed_item (id INTEGER PRIMARY KEY, run_id INTEGER, destination TEXT NOT NULL, item TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL);`,
  `CREATE TABLE lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);`,
];

export class SettingsDb {
  readonly #db: Database.Database;

  private constructor(
    readonly file: string,
    private readonly box: SecretBox,
  ) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a killed process (it is in the WAL); after a power loss the last ledger or
    // cursor updates may be lost, which only makes the next run re-read and re-deliver (SQL replaces, files are
    // compared byte for byte), never lose data.
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 10000');
    this.#migrate();
  }

  /** Opens (creating and upgrading) the settings database in `file`. */
  static open(file: string, box: SecretBox): SettingsDb {
    return new SettingsDb(file, box);
  }

  #migrate(): void {
    const db = this.#db;
    db.transaction(() => {
      const hasMeta = db
        .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
        .get(SETTINGS_DATABASE_MARKER);
      const version = hasMeta
        ? Number(
            (
              db.prepare(`SELECT value FROM ${SETTINGS_DATABASE_MARKER} WHERE key = 'schema_version'`).get() as
                { value: string } | undefined
            )?.value ?? 0,
          )
        : 0;
      for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
      db.prepare(`INSERT OR REPLACE INTO ${SETTINGS_DATABASE_MARKER} (key, value) VALUES ('schema_version', ?)`).run(
        String(MIGRATIONS.length),
      );
    }).immediate();
  }

  schemaVersion(): number {
    return MIGRATIONS.length;
  }

  // ---- application settings (notification, log, engine) ----

  /** The application settings, with the SMTP password opened. */
  application(): ApplicationSettings {
    const row = this.#db.prepare(`SELECT value FROM ${SETTINGS_DATABASE_MARKER} WHERE key = 'application'`).get() as
      { value: string } | undefined;
    const a = row ? (JSON.parse(row.value) as ApplicationSettings) : {};
    if (a.notification)
      a.notification = openFields(this.box, a.notification as unknown as Record<string, unknown>, [
        'password',
      ]) as unknown as Notification;
    return a;
  }

  putApplication(a: ApplicationSettings): void {
    const sealed: ApplicationSettings = { ...a };
    if (a.notification)
      sealed.notification = sealFields(this.box, a.notification as unknown as Record<string, unknown>, [
        'password',
      ]) as unknown as Notification;
    this.#db
      .prepare(`INSERT OR REPLACE INTO ${SETTINGS_DATABASE_MARKER} (key, value) VALUES ('application', ?)`)
      .run(JSON.stringify(sealed));
  }

  // ---- sites ----

  putSite(site: SiteSettings): void {
    const sealed = sealFields(this.box, site as unknown as Record<string, unknown>, SITE_SECRETS);
    this.#db
      .prepare(`INSERT OR REPLACE INTO site (name, settings) VALUES (?, ?)`)
      .run(site.name, JSON.stringify(sealed));
  }

  /** A site with its secrets, to connect with. */
  site(name: string): SiteSettings {
    const row = this.#db.prepare(`SELECT settings FROM site WHERE name = ?`).get(name) as
      { settings: string } | undefined;
    if (!row) throw new NotFoundError(`no site named ${JSON.stringify(name)}; see \`ic site list\``);
    return openFields(
      this.box,
      JSON.parse(row.settings) as Record<string, unknown>,
      SITE_SECRETS,
    ) as unknown as SiteSettings;
  }

  /** Every site, secrets masked. */
  sites(): SiteSettings[] {
    return (this.#db.prepare(`SELECT settings FROM site ORDER BY name`).all() as { settings: string }[]).map(
      (r) => mask(JSON.parse(r.settings) as Record<string, unknown>, SITE_SECRETS) as unknown as SiteSettings,
    );
  }

  removeSite(name: string): boolean {
    return this.#db.prepare(`DELETE FROM site WHERE name = ?`).run(name).changes > 0;
  }

  // ---- destinations ----

  putDestination(d: DestinationSettings, secretFields: readonly string[]): void {
    const sealed = sealFields(this.box, d.config, secretFields);
    this.#db
      .prepare(`INSERT OR REPLACE INTO destination (name, plugin, config, secret_fields) VALUES (?, ?, ?, ?)`)
      .run(d.name, d.plugin, JSON.stringify(sealed), JSON.stringify(secretFields));
  }

  /** A destination with its secrets, to create the plugin instance with. */
  destination(name: string): StoredDestination {
    const row = this.#db.prepare(`SELECT * FROM destination WHERE name = ?`).get(name) as DestRow | undefined;
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
  destinations(): StoredDestination[] {
    return (this.#db.prepare(`SELECT * FROM destination ORDER BY name`).all() as DestRow[]).map((row) => {
      const secretFields = JSON.parse(row.secret_fields) as string[];
      return {
        name: row.name,
        plugin: row.plugin,
        config: mask(JSON.parse(row.config) as Record<string, unknown>, secretFields),
        secretFields,
      };
    });
  }

  removeDestination(name: string): boolean {
    return this.#db.prepare(`DELETE FROM destination WHERE name = ?`).run(name).changes > 0;
  }

  // ---- schedules ----

  putSchedule(s: ScheduleSettings): void {
    this.#db.prepare(`INSERT OR REPLACE INTO schedule (name, settings) VALUES (?, ?)`).run(s.name, JSON.stringify(s));
  }

  schedule(name: string): ScheduleSettings {
    const row = this.#db.prepare(`SELECT settings FROM schedule WHERE name = ?`).get(name) as
      { settings: string } | undefined;
    if (!row) throw new NotFoundError(`no schedule named ${JSON.stringify(name)}; see \`ic schedule list\``);
    return JSON.parse(row.settings) as ScheduleSettings;
  }

  schedules(): ScheduleSettings[] {
    return (this.#db.prepare(`SELECT settings FROM schedule ORDER BY name`).all() as { settings: string }[]).map(
      (r) => JSON.parse(r.settings) as ScheduleSettings,
    );
  }

  removeSchedule(name: string): boolean {
    return this.#db.prepare(`DELETE FROM schedule WHERE name = ?`).run(name).changes > 0;
  }

  // ---- cursors and the delivered-items ledger ----

  /** Where a transfer's data type has been delivered up to (Unix seconds, appliance clock). */
  cursor(transfer: string, dataType: Operation): number | undefined {
    const row = this.#db
      .prepare(`SELECT position FROM cursor WHERE transfer = ? AND data_type = ?`)
      .get(transfer, dataType) as { position: number } | undefined;
    return row?.position;
  }

  setCursor(transfer: string, dataType: Operation, position: number): void {
    this.flushDelivered(); // a cursor never moves past ledger entries that are not written yet
    this.#db
      .prepare(`INSERT OR REPLACE INTO cursor (transfer, data_type, position, updated_at) VALUES (?, ?, ?, ?)`)
      .run(transfer, dataType, position, new Date().toISOString());
  }

  cursors(): { transfer: string; dataType: string; position: number; updatedAt: string }[] {
    return this.#db
      .prepare(`SELECT transfer, data_type AS dataType, position, updated_at AS updatedAt FROM cursor ORDER BY 1, 2`)
      .all() as { transfer: string; dataType: string; position: number; updatedAt: string }[];
  }

  wasDelivered(destination: string, item: string): boolean {
    return (
      this.#unflushed.has(`${destination}\0${item}`) ||
      !!this.#stmt(`SELECT 1 FROM delivered WHERE destination = ? AND item = ?`).get(destination, item)
    );
  }

  /**
   * Records an acknowledged item. Entries are written in one transaction per event-loop turn (or per 500), not
   * one each: a crash can lose the entries of that last turn, which only means those items are delivered once
   * more — plugins are idempotent per item (ADR 008) — and `setCursor()` writes them first, so a cursor never
   * passes an unwritten entry.
   */
  markDelivered(destination: string, item: string, location?: string): void {
    this.#unflushed.set(`${destination}\0${item}`, [destination, item, new Date().toISOString(), location ?? null]);
    if (this.#unflushed.size >= 500) this.flushDelivered();
    else this.#flushTimer ??= setImmediate(() => this.flushDelivered());
  }

  /** Writes the pending ledger entries now. */
  flushDelivered(): void {
    if (this.#flushTimer) clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    if (!this.#unflushed.size) return;
    const rows = [...this.#unflushed.values()];
    this.#unflushed.clear();
    const insert = this.#stmt(
      `INSERT OR REPLACE INTO delivered (destination, item, delivered_at, location) VALUES (?, ?, ?, ?)`,
    );
    this.#db.transaction(() => {
      for (const r of rows) insert.run(...r);
    })();
  }

  readonly #unflushed = new Map<string, [string, string, string, string | null]>();
  #flushTimer: NodeJS.Immediate | undefined;

  readonly #statements = new Map<string, Database.Statement>();
  /** A prepared statement, prepared once (for the per-item ledger calls). */
  #stmt(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) this.#statements.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  deliveredCount(destination?: string): number {
    this.flushDelivered();
    const row = (
      destination
        ? this.#db.prepare(`SELECT COUNT(*) AS n FROM delivered WHERE destination = ?`).get(destination)
        : this.#db.prepare(`SELECT COUNT(*) AS n FROM delivered`).get()
    ) as { n: number };
    return row.n;
  }

  // ---- runs ----

  startRun(schedule: string): number {
    return Number(
      this.#db.prepare(`INSERT INTO run (schedule, started_at) VALUES (?, ?)`).run(schedule, new Date().toISOString())
        .lastInsertRowid,
    );
  }

  finishRun(id: number, outcome: RunOutcome, counts: Record<string, number>, error?: string): void {
    this.#db
      .prepare(`UPDATE run SET ended_at = ?, outcome = ?, counts = ?, error = ? WHERE id = ?`)
      .run(new Date().toISOString(), outcome, JSON.stringify(counts), error ?? null, id);
  }

  /** Marks runs of `schedule` that never finished (their process ended) as failed. Call holding its lease. */
  closeAbandonedRuns(schedule: string): number {
    return this.#db
      .prepare(`UPDATE run SET ended_at = ?, outcome = 'failed', error = ? WHERE schedule = ? AND outcome IS NULL`)
      .run(
        new Date().toISOString(),
        'the process running it ended before it finished; the next run caught up',
        schedule,
      ).changes;
  }

  runs(schedule?: string, limit = 20): RunRecord[] {
    const rows = (
      schedule
        ? this.#db.prepare(`SELECT * FROM run WHERE schedule = ? ORDER BY id DESC LIMIT ?`).all(schedule, limit)
        : this.#db.prepare(`SELECT * FROM run ORDER BY id DESC LIMIT ?`).all(limit)
    ) as RunRow[];
    return rows.map((r) => ({
      id: r.id,
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
   * holder has it now.
   */
  tryLease(
    name: string,
    holder: string,
    ttlSeconds: number,
    isGone: (holder: string) => boolean = () => false,
  ): boolean {
    const now = Math.floor(Date.now() / 1000);
    return this.#db
      .transaction(() => {
        const row = this.#db.prepare(`SELECT holder, expires_at FROM lease WHERE name = ?`).get(name) as
          { holder: string; expires_at: number } | undefined;
        if (row && row.holder !== holder && row.expires_at > now && !isGone(row.holder)) return false;
        this.#db
          .prepare(`INSERT OR REPLACE INTO lease (name, holder, expires_at) VALUES (?, ?, ?)`)
          .run(name, holder, now + ttlSeconds);
        return true;
      })
      .immediate();
  }

  releaseLease(name: string, holder: string): void {
    this.#db.prepare(`DELETE FROM lease WHERE name = ? AND holder = ?`).run(name, holder);
  }

  recordFailure(runId: number | undefined, destination: string, item: string, code: string, message: string): void {
    this.#db
      .prepare(`INSERT INTO failed_item (run_id, destination, item, code, message, at) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(runId ?? null, destination, item, code, message, new Date().toISOString());
  }

  failures(limit = 50): { destination: string; item: string; code: string; message: string; at: string }[] {
    return this.#db
      .prepare(`SELECT destination, item, code, message, at FROM failed_item ORDER BY id DESC LIMIT ?`)
      .all(limit) as { destination: string; item: string; code: string; message: string; at: string }[];
  }

  close(): void {
    this.flushDelivered();
    this.#db.close();
  }
}

interface DestRow {
  name: string;
  plugin: string;
  config: string;
  secret_fields: string;
}
interface RunRow {
  id: number;
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
