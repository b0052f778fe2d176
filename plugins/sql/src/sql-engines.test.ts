/**
 * The same tests on SQLite, PostgreSQL and MariaDB, each against a real server or file.
 */
import { fileURLToPath } from 'node:url';
import { isIcError, MODEL_JSON, type Destination, type Item, type Session } from '@integration-client/plugin-sdk';
import { runConformance, sampleSession } from '@integration-client/plugin-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TABLES } from './schema.js';
import { sampleSessions } from './sample-sessions.js';
import {
  columnsOf,
  counts,
  createDatabase,
  deliver,
  makeDestination,
  sessionItem,
  type TestDatabase,
} from './test-helpers.js';

const SEED_COLUMNS: Record<string, string[]> = {
  session: [
    'id',
    'lsid',
    'type',
    'start_time',
    'end_time',
    'duration',
    'file_transfers',
    'host_name',
    'external_key',
    'public_site_id',
    'public_site_name',
    'lseq',
    'jump_group_id',
    'jump_group_name',
    'jump_group_type',
  ],
  session_event: [
    'id',
    'session_id',
    'type',
    'event_time',
    'performed_by',
    'performed_by_type',
    'destination',
    'destination_type',
  ],
  session_event_data: ['id', 'session_event_id', 'name', 'value'],
  system_information: ['id', 'session_event_id', 'category', 'information'],
  representative: [
    'id',
    'gs_number',
    'session_id',
    'user_id',
    'user_name',
    'display_name',
    'public_display_name',
    'display_number',
    'public_ip',
    'private_ip',
    'is_owner',
    'is_primary',
    'duration',
    'host_name',
    'operating_system',
  ],
  customer: [
    'id',
    'session_id',
    'gs_number',
    'issue',
    'issue_description',
    'display_name',
    'company_name',
    'company_code',
    'public_ip',
    'private_ip',
    'rpat_support',
    'host_name',
    'operating_system',
  ],
  team: ['id', 'session_id', 'team_id', 'name', 'is_primary'],
  custom_attribute: ['id', 'session_id', 'display_name', 'code_name', 'value'],
};

const packageDir = fileURLToPath(new URL('..', import.meta.url));

describe.each(['sqlite', 'postgres', 'mysql'] as const)('SQL destination on %s', (engine) => {
  let db: TestDatabase;
  const open: Destination[] = [];
  const destination = async (extra: Record<string, unknown> = {}) => {
    const { dest, ctx } = await makeDestination({ connectionString: db.connectionString, ...extra });
    open.push(dest);
    return { dest, ctx };
  };

  beforeAll(async () => {
    db = await createDatabase(engine);
  });
  afterAll(async () => {
    for (const d of open) await d.close();
    await db.drop();
  });

  it('passes the SDK conformance suite', async () => {
    const report = await runConformance({ packageDir, config: { connectionString: db.connectionString } });
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it("creates the seed's tables with its column names, records the schema version, and upgrades idempotently", async () => {
    const { dest } = await destination();
    const check = await dest.check();
    expect(check.steps.map((s) => s.name)).toEqual([
      'connect',
      'tables',
      'create table',
      'insert, select, update, delete',
    ]);
    expect(check.ok).toBe(true);
    for (const [table, cols] of Object.entries(SEED_COLUMNS)) expect(await columnsOf(db, table)).toEqual(cols);
    expect(await columnsOf(db, 'session_extra')).toEqual(['id', 'session_id', 'name', 'value']);
    const versions = await db.sql('SELECT version, description FROM ic_schema_migrations');
    expect(versions.map((v) => Number(v.version))).toEqual([1]);
    // A second instance (another process) finds the schema current and changes nothing.
    const again = await destination();
    expect((await again.dest.check()).steps[1]!.message).toMatch(/present \(schema version 1\)/);
    expect(TABLES.length).toBe(9);
  });

  it('re-delivering the same 1,000 sessions leaves exactly 1,000 sessions and the same child rows', async () => {
    const { dest } = await destination({ batchSize: 100 });
    const sessions = sampleSessions({ count: 1000, events: 8, host: `redeliver-${engine}.example.com` });
    const first = await Promise.all(sessions.map((s) => deliver(dest, sessionItem(s))));
    expect(first.every((a) => a.status === 'written')).toBe(true);
    const once = await counts(db);
    const second = await Promise.all(sessions.map((s) => deliver(dest, sessionItem(s))));
    expect(second.every((a) => a.status === 'replaced')).toBe(true);
    const twice = await counts(db);
    expect(twice).toEqual(once);
    const [n] = await db.sql(
      `SELECT COUNT(*) AS n FROM session WHERE host_name = '${`redeliver-${engine}.example.com`}'`,
    );
    expect(Number(n!.n)).toBe(1000);
    const [events] = await db.sql(
      `SELECT COUNT(*) AS n FROM session_event e JOIN session s ON s.id = e.session_id WHERE s.host_name = 'redeliver-${engine}.example.com'`,
    );
    expect(Number(events!.n)).toBe(8000);
  });

  it('one session in two batches written at once (PostgreSQL and MariaDB write two) is stored once, every delivery acknowledged', async () => {
    const host = `concurrent-${engine}.example.com`;
    const { dest } = await destination({ batchSize: 2 });
    const [a, b, c] = sampleSessions({ count: 3, events: 4, host });
    const again = { ...b!, events: b!.events.slice(0, 2) };
    // Submitted together: the first writer takes [a, b], the second (PostgreSQL, MariaDB) [again, c] at the same time.
    const acks = await Promise.all([a, b, again, c].map((s) => deliver(dest, sessionItem(s!))));
    expect(acks.map((x) => x.status).sort()).toEqual(['replaced', 'written', 'written', 'written']);
    const rows = await db.sql(`SELECT lsid FROM session WHERE host_name = '${host}' ORDER BY lsid`);
    expect(rows.map((r) => r.lsid)).toEqual([a!.lsid, b!.lsid, c!.lsid]);
    const [events] = await db.sql(
      `SELECT COUNT(*) AS n FROM session_event e JOIN session s ON s.id = e.session_id WHERE s.lsid = '${b!.lsid}' AND s.host_name = '${host}'`,
    );
    expect([2, 4]).toContain(Number(events!.n)); // whichever copy was written last
  });

  it('maps every field of the model into its column, times in UTC', async () => {
    const { dest } = await destination();
    const s = sampleSession({ lsid: `map-${engine}`, supportSiteHost: 'map.example.com' });
    const ack = await deliver(dest, sessionItem(s));
    expect(ack).toEqual({ status: 'written', location: `${engine}:session/map.example.com/map-${engine}` });
    const [row] = await db.sql(`SELECT * FROM session WHERE lsid = 'map-${engine}'`);
    expect(row).toMatchObject({
      type: 'support',
      duration: '00:15:02',
      host_name: 'map.example.com',
      external_key: 'INC0012345',
      public_site_name: 'Default',
      jump_group_name: 'Helpdesk',
      jump_group_type: 'shared',
    });
    expect(Number(row!.file_transfers)).toBe(2);
    expect(Number(row!.lseq)).toBe(1234);
    expect(new Date(utc(row!.start_time)).toISOString()).toBe('2024-12-03T15:26:05.000Z');
    expect(new Date(utc(row!.end_time)).toISOString()).toBe('2024-12-03T15:41:07.000Z');
    const id = row!.id as number;
    const [rep] = await db.sql(`SELECT * FROM representative WHERE session_id = ${id}`);
    expect(rep).toMatchObject({
      user_name: 'admin',
      display_name: 'Admin',
      public_ip: '2a01:e34::1',
      host_name: 'REP-PC',
    });
    expect([rep!.is_owner, rep!.is_primary, rep!.duration, rep!.gs_number].map(Number)).toEqual([1, 1, 901, 21]);
    const [cust] = await db.sql(`SELECT * FROM customer WHERE session_id = ${id}`);
    expect(cust).toMatchObject({
      issue: '3',
      issue_description: 'Printer broken',
      display_name: 'Jane Customer',
      company_name: 'Acme',
      company_code: 'AC1',
      private_ip: '10.0.0.4',
      host_name: 'PC-042',
      operating_system: 'Windows 11 Pro',
    });
    expect(Number(cust!.rpat_support)).toBe(0);
    const [team] = await db.sql(`SELECT * FROM team WHERE session_id = ${id}`);
    expect(team).toMatchObject({ name: 'Tier 1' });
    const [attr] = await db.sql(`SELECT * FROM custom_attribute WHERE session_id = ${id}`);
    expect(attr).toMatchObject({ display_name: 'Ticket', code_name: 'ticket_id', value: '12345' });
    const events = await db.sql(`SELECT * FROM session_event WHERE session_id = ${id} ORDER BY id`);
    expect(events.map((e) => e.type)).toEqual([
      'Session Start',
      'Chat Message',
      'System Information Retrieved',
      'Session End',
    ]);
    expect(events[1]).toMatchObject({
      performed_by: 'Admin',
      performed_by_type: 'representative',
      destination: 'Jane Customer',
      destination_type: 'customer',
    });
    const [body] = await db.sql(
      `SELECT name, value FROM session_event_data WHERE session_event_id = ${events[1]!.id as number}`,
    );
    expect(body).toEqual({ name: 'body', value: 'Hello' });
    const [info] = await db.sql(
      `SELECT category, information FROM system_information WHERE session_event_id = ${events[2]!.id as number}`,
    );
    expect(info).toEqual({
      category: 'General',
      information:
        '<description><field name="os">Operating System</field></description><data><row><field name="os">Windows 11 Pro</field></row></data>',
    });
    const extras = await db.sql(`SELECT name FROM session_extra WHERE session_id = ${id} ORDER BY name`);
    expect(extras.map((e) => e.name)).toEqual([
      'exit_surveys',
      'file_delete_count',
      'primary_customer',
      'primary_rep',
      'recordings',
    ]);
  });

  it('completes a session first stored in progress, in place', async () => {
    const { dest } = await destination();
    const done = sampleSessions({ count: 1, events: 6, host: 'progress.example.com', from: 77 })[0]!;
    const open = { ...done, endTime: undefined, duration: undefined };
    const running = { ...open, events: done.events.slice(0, 3) };
    expect((await deliver(dest, sessionItem(running))).status).toBe('written');
    const [before] = await db.sql(`SELECT end_time FROM session WHERE host_name = 'progress.example.com'`);
    expect(before!.end_time).toBeNull();
    expect((await deliver(dest, sessionItem(done))).status).toBe('replaced');
    const rows = await db.sql(`SELECT id, end_time FROM session WHERE host_name = 'progress.example.com'`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.end_time).not.toBeNull();
    const [n] = await db.sql(`SELECT COUNT(*) AS n FROM session_event WHERE session_id = ${rows[0]!.id as number}`);
    expect(Number(n!.n)).toBe(6);
  });

  it('Should Store System Information = false stores none and skips the system-information operation', async () => {
    const { dest } = await destination({ storeSystemInformation: false });
    const s = sampleSession({ lsid: 'nosys', supportSiteHost: 'nosys.example.com' });
    await deliver(dest, sessionItem(s));
    const [n] = await db.sql(
      `SELECT COUNT(*) AS n FROM system_information i JOIN session_event e ON e.id = i.session_event_id JOIN session s ON s.id = e.session_id WHERE s.host_name = 'nosys.example.com'`,
    );
    expect(Number(n!.n)).toBe(0);
    const ack = await deliver(dest, {
      operation: 'system-information',
      site: { host: 'nosys.example.com' },
      lsid: s.lsid,
      session: s,
      xml: '',
    });
    expect(ack.status).toBe('skipped');
  });

  it('system-information replaces the categories of a stored session and needs the session first', async () => {
    const { dest } = await destination();
    const s = sampleSession({ lsid: 'sys', supportSiteHost: 'sys.example.com' });
    const item = {
      operation: 'system-information' as const,
      site: { host: 'sys.example.com' },
      lsid: s.lsid,
      session: s,
      xml: '',
    };
    await expect(deliver(dest, item)).rejects.toThrow(
      expect.objectContaining({
        code: 'IC_ERR_DESTINATION_WRITE_FAILED',
        retryable: true,
        message: expect.stringMatching(/not stored yet/),
      }),
    );
    await deliver(dest, sessionItem(s));
    expect((await deliver(dest, item)).status).toBe('replaced');
    expect((await deliver(dest, item)).status).toBe('replaced');
    const rows = await db.sql(
      `SELECT i.category FROM system_information i JOIN session_event e ON e.id = i.session_event_id JOIN session s ON s.id = e.session_id WHERE s.host_name = 'sys.example.com'`,
    );
    expect(rows).toEqual([{ category: 'General' }]);
  });

  it('refuses bad text as a bad item without writing any of that session, while the others of its batch land', async () => {
    const { dest } = await destination();
    const [a, b, c] = sampleSessions({ count: 3, events: 4, host: 'bad.example.com', from: 500 });
    const withNul = { ...b!, externalKey: 'INC\u0000123' };
    const results = await Promise.allSettled([a, withNul, c].map((s) => deliver(dest, sessionItem(s!))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const err = (results[1] as PromiseRejectedResult).reason as Error;
    expect(isIcError(err) && err.code).toBe('IC_ERR_DESTINATION_BAD_ITEM');
    expect(err.message).toMatch(/session\.external_key contains a NUL/);
    const tooLong = { ...b!, jumpGroup: { id: 1, name: 'x'.repeat(300), type: 'shared' } };
    await expect(deliver(dest, sessionItem(tooLong))).rejects.toThrow(
      expect.objectContaining({ code: 'IC_ERR_DESTINATION_BAD_ITEM', retryable: false }),
    );
    const lsids = await db.sql(`SELECT lsid FROM session WHERE host_name = 'bad.example.com' ORDER BY lsid`);
    expect(lsids.map((r) => r.lsid)).toEqual([a!.lsid, c!.lsid]);
  });

  it('stores an item that crossed as JSON text from the text, never reading item.session', async () => {
    const { dest } = await destination();
    const [a, b] = sampleSessions({ count: 2, events: 3, host: `text-${engine}.example.com` });
    // As the plugin worker hands it on: the model's text under MODEL_JSON, and item.session parsed only when read.
    const crossed = (s: Session): Item =>
      Object.defineProperties(
        { operation: 'session-data', site: { host: s.supportSiteHost }, lsid: s.lsid, xml: '<session_list/>' },
        {
          [MODEL_JSON]: { value: JSON.stringify(s) },
          session: {
            enumerable: true,
            get() {
              throw new Error('item.session was read');
            },
          },
        },
      ) as Item;
    const acks = await Promise.all([a, b].map((s) => deliver(dest, crossed(s!))));
    expect(acks.map((x) => x.status)).toEqual(['written', 'written']);
    const rows = await db.sql(
      `SELECT lsid, external_key FROM session WHERE host_name = 'text-${engine}.example.com' ORDER BY lsid`,
    );
    expect(rows).toEqual([a, b].map((s) => ({ lsid: s!.lsid, external_key: s!.externalKey ?? null })));
  });

  it('stores very long text, lone surrogates (as U+FFFD) and sessions with every optional element missing', async () => {
    const { dest } = await destination();
    const long = 'é'.repeat(1_000_000);
    const s = sampleSession({ lsid: 'long', supportSiteHost: 'text.example.com', externalKey: long });
    s.events[1] = { ...s.events[1]!, body: 'bad \ud800 half' };
    await deliver(dest, sessionItem(s));
    const [row] = await db.sql(`SELECT external_key FROM session WHERE lsid = 'long'`);
    expect(row!.external_key).toBe(long);
    const [body] = await db.sql(`SELECT value FROM session_event_data WHERE name = 'body' AND value LIKE 'bad %'`);
    expect(body!.value).toBe('bad \ufffd half');
    const bare = {
      lsid: 'bare',
      sessionType: 'support',
      startTime: '2024-01-01T00:00:00Z',
      supportSiteHost: 'text.example.com',
      fileTransferCount: 0,
      fileMoveCount: 0,
      fileDeleteCount: 0,
      customers: [],
      representatives: [],
      teams: [],
      customAttributes: [],
      events: [],
      recordings: { commandShell: [], showMyScreen: [] },
      exitSurveys: [],
      extra: {},
    };
    expect((await deliver(dest, sessionItem(bare))).status).toBe('written');
    const [b] = await db.sql(`SELECT end_time, external_key, lseq, duration FROM session WHERE lsid = 'bare'`);
    expect(b).toEqual({ end_time: null, external_key: null, lseq: null, duration: null });
  });

  it('refuses a database that holds the settings, in check() and on delivery', async () => {
    const other = await createDatabase(engine);
    try {
      await other.sql('CREATE TABLE ic_settings_meta (k INTEGER)');
      const { dest } = await makeDestination({ connectionString: other.connectionString });
      const check = await dest.check();
      expect(check.ok).toBe(false);
      expect(check.steps.at(-1)!.message).toMatch(/settings database .* must never be the same/);
      await expect(deliver(dest, sessionItem(sampleSession()))).rejects.toThrow(
        expect.objectContaining({ code: 'IC_ERR_CONFIG_INVALID' }),
      );
      await dest.close();
      expect((await other.sql(`SELECT COUNT(*) AS n FROM ic_settings_meta`)).length).toBe(1);
    } finally {
      await other.drop();
    }
  });
});

/** A time column value as an instant: SQLite and MariaDB return UTC text without a zone. */
function utc(v: unknown): string | Date {
  if (v instanceof Date) return v;
  const s = String(v);
  return /[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s.replace(' ', 'T')}Z`;
}
