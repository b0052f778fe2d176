/**
 * The repository: schema migrations and replace-in-place writes of sessions, written once for every engine
 * against the Driver interface. A batch of sessions is one transaction: the stored copies of those sessions
 * (found by host_name + lsid) are deleted with all their child rows, then the new rows are inserted parents
 * first. Re-delivering a session therefore never duplicates it, and an in-progress copy is completed in place.
 */
import { ConfigError, DestinationError, SETTINGS_DATABASE_MARKER } from '@integration-client/plugin-sdk';
import { toDestinationError } from './db-errors.js';
import { migrationsTableDdl, MIGRATIONS } from './dialects.js';
import type { Driver, Tx } from './driver.js';
import { refIndex, type Row, type SessionChild, type SessionRows, type Value } from './rows.js';
import { EVENT_CHILDREN, MIGRATIONS_TABLE, SESSION_CHILDREN, type TableName } from './schema.js';

export type WriteStatus = 'written' | 'replaced';

export interface MigrationOutcome {
  readonly from: number;
  readonly to: number;
}

const CHILD_TABLES: readonly SessionChild[] = [
  'representative',
  'customer',
  'team',
  'custom_attribute',
  'session_extra',
];

export class SessionStore {
  constructor(private readonly driver: Driver) {}

  private get d() {
    return this.driver.dialect;
  }

  /** `p0, p1, …` for n parameters starting at `from`. */
  private params(n: number, from = 0): string {
    return Array.from({ length: n }, (_, i) => this.d.param(from + i)).join(', ');
  }

  /** Refuses the settings database; creates or upgrades the schema under a lock. Returns the versions. */
  async migrate(): Promise<MigrationOutcome> {
    const tables = await this.driver.tableNames();
    if (tables.has(SETTINGS_DATABASE_MARKER))
      throw new ConfigError(
        `connectionString points at the integration client's settings database (it holds table ${SETTINGS_DATABASE_MARKER}); the settings database and a storage database must never be the same — use another database`,
        { details: { errors: [{ path: '/connectionString', message: 'is the settings database' }] } },
      );
    const q = this.d.q;
    return this.driver.transaction(async (tx) => {
      await tx.lockForMigration();
      await tx.query(migrationsTableDdl(this.d));
      const applied = new Set(
        (await tx.query(`SELECT ${q('version')} FROM ${q(MIGRATIONS_TABLE)}`)).map((r) => Number(r.version)),
      );
      const from = applied.size ? Math.max(...applied) : 0;
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        for (const statement of m.statements(this.d)) await tx.query(statement);
        await tx.query(
          `INSERT INTO ${q(MIGRATIONS_TABLE)} (${q('version')}, ${q('description')}, ${q('applied_at')}) VALUES (${this.params(2)}, ${this.d.now})`,
          [m.version, m.description],
        );
      }
      return { from, to: Math.max(from, ...MIGRATIONS.map((m) => m.version)) };
    });
  }

  /** Writes sessions in one transaction; one status per input, in order. */
  async writeSessions(batch: readonly SessionRows[]): Promise<WriteStatus[]> {
    return this.driver.transaction(async (tx) => {
      const existing = await this.findSessions(tx, batch);
      if (existing.size) await this.deleteSessions(tx, [...existing.values()]);
      // The same session twice in one batch: the later copy wins, both are reported as replaced.
      const last = new Map<string, number>();
      batch.forEach((s, i) => last.set(keyOf(s), i));
      const kept = batch.filter((s, i) => last.get(keyOf(s)) === i);
      await this.insertSessions(tx, kept);
      return batch.map((s, i) => (existing.has(keyOf(s)) || last.get(keyOf(s)) !== i ? 'replaced' : 'written'));
    });
  }

  /**
   * Replaces the system_information rows of a stored session with those in `rows` (matched to the stored events
   * by position). Fails retryable when the session is not stored yet or was stored with other events.
   */
  async writeSystemInformation(rows: SessionRows): Promise<WriteStatus> {
    const q = this.d.q;
    return this.driver.transaction(async (tx) => {
      const found = await this.findSessions(tx, [rows]);
      const sessionId = found.get(keyOf(rows));
      const where = `session ${rows.lsid} of ${rows.host}`;
      if (sessionId === undefined)
        throw new DestinationError(
          'IC_ERR_DESTINATION_WRITE_FAILED',
          `${where} is not stored yet, so its system information has no event to attach to; deliver session-data to this destination first`,
        );
      const events = await tx.query(
        `SELECT ${q('id')} FROM ${q('session_event')} WHERE ${q('session_id')} = ${this.d.param(0)} ORDER BY ${q('id')}`,
        [sessionId],
      );
      if (events.length !== rows.events.length)
        throw new DestinationError(
          'IC_ERR_DESTINATION_WRITE_FAILED',
          `${where} is stored with ${events.length} events but arrived with ${rows.events.length}; deliver its session-data again first`,
        );
      const eventIds = events.map((e) => Number(e.id));
      await tx.query(
        `DELETE FROM ${q('system_information')} WHERE ${q('session_event_id')} IN (SELECT ${q('id')} FROM ${q('session_event')} WHERE ${q('session_id')} = ${this.d.param(0)})`,
        [sessionId],
      );
      const info: Row[] = [];
      rows.events.forEach((e, i) => info.push(...withRef(e.systemInformation, 'system_information', eventIds[i]!)));
      await tx.insert('system_information', info, false);
      return 'replaced' as const;
    });
  }

  /** Creates and drops a probe table (the seed's prerequisite: permission to create tables). */
  async probeCreate(): Promise<void> {
    const name = this.d.q(`ic_probe_${process.pid}_${Date.now()}`);
    await this.driver.transaction(async (tx) => {
      await tx.query(`CREATE TABLE ${name} (${this.d.q('id')} INTEGER NOT NULL)`);
      await tx.query(`DROP TABLE ${name}`);
    });
  }

  /** Inserts, reads, updates and deletes a probe session in a transaction that is always rolled back. */
  async probeDml(): Promise<void> {
    const { q, param } = this.d;
    const args = ['ic-permission-probe', `ic-permission-probe-${Date.now()}`];
    const key = `${q('host_name')} = ${param(0)} AND ${q('lsid')} = ${param(1)}`;
    const steps: [string, string, Value[]][] = [
      [
        'INSERT',
        `INSERT INTO ${q('session')} (${q('host_name')}, ${q('lsid')}) VALUES (${param(0)}, ${param(1)})`,
        args,
      ],
      ['SELECT', `SELECT ${q('id')} FROM ${q('session')} WHERE ${key}`, args],
      ['UPDATE', `UPDATE ${q('session')} SET ${q('type')} = ${param(2)} WHERE ${key}`, [...args, 'probe']],
      ['DELETE', `DELETE FROM ${q('session')} WHERE ${key}`, args],
    ];
    const rollback = new Error('probe done');
    await this.driver
      .transaction(async (tx) => {
        for (const [what, sql, params] of steps)
          await tx
            .query(sql, params)
            .catch((err: unknown) => Promise.reject(toDestinationError(err, `${what} on table session`)));
        throw rollback;
      })
      .catch((err: unknown) => {
        if (err !== rollback) throw err;
      });
  }

  /** Stored session ids by `host\nlsid`. */
  private async findSessions(tx: Tx, batch: readonly SessionRows[]): Promise<Map<string, number>> {
    const q = this.d.q;
    const byHost = new Map<string, string[]>();
    for (const s of batch) {
      const lsids = byHost.get(s.host);
      if (lsids) lsids.push(s.lsid);
      else byHost.set(s.host, [s.lsid]);
    }
    const found = new Map<string, number>();
    for (const [host, lsids] of byHost) {
      const unique = [...new Set(lsids)];
      const rows = await tx.query(
        `SELECT ${q('id')}, ${q('lsid')} FROM ${q('session')} WHERE ${q('host_name')} = ${this.d.param(0)} AND ${q('lsid')} IN (${this.params(unique.length, 1)})`,
        [host, ...unique],
      );
      for (const r of rows) found.set(`${host}\n${String(r.lsid)}`, Number(r.id));
    }
    return found;
  }

  private async deleteSessions(tx: Tx, ids: number[]): Promise<void> {
    const q = this.d.q;
    const list = this.params(ids.length);
    const events = `SELECT ${q('id')} FROM ${q('session_event')} WHERE ${q('session_id')} IN (${list})`;
    for (const t of EVENT_CHILDREN)
      await tx.query(`DELETE FROM ${q(t)} WHERE ${q('session_event_id')} IN (${events})`, ids);
    for (const t of SESSION_CHILDREN) await tx.query(`DELETE FROM ${q(t)} WHERE ${q('session_id')} IN (${list})`, ids);
    await tx.query(`DELETE FROM ${q('session')} WHERE ${q('id')} IN (${list})`, ids);
  }

  private async insertSessions(tx: Tx, batch: readonly SessionRows[]): Promise<void> {
    if (!batch.length) return;
    const sessionIds = await tx.insert(
      'session',
      batch.map((s) => s.session),
      true,
    );
    const events: Row[] = [];
    batch.forEach((s, i) =>
      events.push(
        ...withRef(
          s.events.map((e) => e.row),
          'session_event',
          sessionIds[i]!,
        ),
      ),
    );
    const eventIds = await tx.insert('session_event', events, true);
    const data: Row[] = [];
    const info: Row[] = [];
    let n = 0;
    for (const s of batch)
      for (const e of s.events) {
        const id = eventIds[n++]!;
        data.push(...withRef(e.data, 'session_event_data', id));
        info.push(...withRef(e.systemInformation, 'system_information', id));
      }
    await tx.insert('session_event_data', data, false);
    if (info.length) await tx.insert('system_information', info, false);
    for (const t of CHILD_TABLES) {
      const rows: Row[] = [];
      batch.forEach((s, i) => rows.push(...withRef(s.children[t], t, sessionIds[i]!)));
      if (rows.length) await tx.insert(t, rows, false);
    }
  }
}

const keyOf = (s: { host: string; lsid: string }) => `${s.host}\n${s.lsid}`;

/** Copies of `rows` with the parent reference of `table` set to `id`. */
function withRef(rows: readonly Row[], table: TableName, id: Value): Row[] {
  const at = refIndex(table);
  return rows.map((r) => {
    const copy = r.slice();
    copy[at] = id;
    return copy;
  });
}
