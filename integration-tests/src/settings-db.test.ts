/**
 * The settings database's repository on each engine that runs here — SQLite (a file) and PostgreSQL (a fresh
 * database on the local server) — and `copySettings` between them. SQL Server runs the same code; its statements
 * are checked by a T-SQL grammar in core (settings-schema.test.ts) because no server runs here.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySettings, SecretBox, SettingsDb } from '@integration-client/core';
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot, tmpfs } from './tmpfs.js';

const box = SecretBox.withKey(Buffer.alloc(32, 7));
const { createDatabase } = (await import('../../plugins/sql/dist/test-helpers.js')) as {
  createDatabase: (engine: 'postgres') => Promise<{ connectionString: string; drop(): Promise<void> }>;
};

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

/** A fresh, empty settings connection string on `engine`. */
async function fresh(engine: 'sqlite' | 'postgres'): Promise<string> {
  if (engine === 'sqlite') return `sqlite:${join(await mkdtemp(join(tmpdir(), 'ic-settings-')), 'settings.db')}`;
  const d = await createDatabase('postgres');
  cleanup.push(() => d.drop());
  return d.connectionString;
}

async function open(connection: string): Promise<SettingsDb> {
  const db = await SettingsDb.open(connection, box);
  cleanup.push(() => db.close());
  return db;
}

const SITE = { name: 'main', host: 'support.example.com', clientId: 'cid', clientSecret: 'the-client-secret' };

/** Fills a settings database with one of everything. */
async function fill(db: SettingsDb): Promise<void> {
  await db.putApplication({
    logRemovalDays: 9,
    notification: {
      enabled: true,
      host: 'smtp.example.com',
      port: 25,
      from: 'a@b.c',
      to: ['d@e.f'],
      password: 'smtp-pw',
    },
  } as never);
  await db.putSite({ ...SITE, backupPassword: 'backup-pw' });
  await db.putDestination({ name: 'archive', plugin: 'sql', config: { connectionString: 'postgres://u:db-pw@h/x' } }, [
    'connectionString',
  ]);
  await db.putSchedule({
    name: 'nightly',
    period: '1d',
    enabled: true,
    transfers: [{ site: 'main', destination: 'archive', dataTypes: ['session-data'] }],
  });
  for (let i = 0; i < 1203; i++)
    db.markDelivered('archive', `session-data|h|${String(i).padStart(6, '0')}`, `row ${i}`);
  await db.setCursor('main→archive', 'session-data', 1_700_000_000);
  const run = await db.startRun('nightly');
  await db.recordFailure(run, 'archive', 'session-data|h|x', 'IC_ERR_X', 'bad row');
  await db.finishRun(run, 'partly-failed', { delivered: 1203, failed: 1 }, 'IC_ERR_X: bad row');
}

describe.each(['sqlite', 'postgres'] as const)('settings database on %s', (engine) => {
  it('stores sites, destinations, schedules and application settings with their secrets sealed', async () => {
    const connection = await fresh(engine);
    const db = await open(connection);
    await fill(db);
    expect(await db.site('main')).toMatchObject({ clientSecret: 'the-client-secret', backupPassword: 'backup-pw' });
    expect((await db.sites())[0]).toMatchObject({ clientSecret: '********', backupPassword: '********' });
    expect((await db.destination('archive')).config.connectionString).toBe('postgres://u:db-pw@h/x');
    expect((await db.destinations())[0]!.config.connectionString).toBe('********');
    expect((await db.application()).notification?.password).toBe('smtp-pw');
    expect((await db.schedule('nightly')).transfers).toHaveLength(1);
    // At rest: no secret in any row.
    const raw = JSON.stringify([
      await db.sql.all('SELECT * FROM site'),
      await db.sql.all('SELECT * FROM destination'),
      await db.sql.all('SELECT * FROM ic_settings_meta'),
    ]);
    for (const secret of ['the-client-secret', 'backup-pw', 'db-pw', 'smtp-pw']) expect(raw).not.toContain(secret);
    // Replace in place, then remove.
    await db.putSite({ ...SITE, host: 'other.example.com' });
    expect((await db.sites()).map((s) => s.host)).toEqual(['other.example.com']);
    expect(await db.removeSite('main')).toEqual({ cursors: 0, delivered: 0, failedItems: 0 });
    expect(await db.removeSite('main')).toBeUndefined();
    await expect(db.site('main')).rejects.toMatchObject({ code: 'IC_ERR_NOT_FOUND' });
    // A second open finds the schema in place (no migration runs twice).
    const again = await open(connection);
    expect((await again.schedules()).map((s) => s.name)).toEqual(['nightly']);
  });

  it('lists the failed items still open: one per destination and item with its attempts, none the ledger holds', async () => {
    const db = await open(await fresh(engine));
    await fill(db);
    const run = (await db.runs('nightly', 1))[0]!.id;
    await db.recordFailure(undefined, 'archive', 'session-data|h|x', 'IC_ERR_Y', 'bad row again');
    await db.recordFailure(run, 'archive', 'command-shell-recording|h|000001#2', 'IC_ERR_X', 'gone');
    db.markDelivered('archive', 'command-shell-recording|h|000001#2');
    await db.recordFailure(run, 'files', 'session-recording|h|y', 'IC_ERR_Z', 'no');
    const failed = await db.failedItems();
    expect(failed).toEqual([
      expect.objectContaining({ destination: 'files', operation: 'session-recording', lsid: 'y', attempts: 1 }),
      expect.objectContaining({
        destination: 'archive',
        item: 'session-data|h|x',
        operation: 'session-data',
        host: 'h',
        lsid: 'x',
        code: 'IC_ERR_Y',
        message: 'bad row again',
        attempts: 2,
      }),
    ]);
    expect(failed[1]).not.toHaveProperty('runId'); // the latest attempt was not a scheduled run's
    expect(failed[1]!.firstAt <= failed[1]!.at).toBe(true);
    expect((await db.failedItems({ destination: 'archive' })).map((i) => i.item)).toEqual(['session-data|h|x']);
    expect(await db.failedItems({ limit: 1 })).toHaveLength(1);
    expect(await db.failedItemCounts()).toEqual({ archive: 1, files: 1 });
    expect(await db.dropFailedItems([{ destination: 'archive', item: 'session-data|h|x' }])).toBe(2);
    expect(await db.failedItemCounts()).toEqual({ files: 1 });
  });

  it('removing a destination forgets its cursors, ledger and failed items; removing a site, its cursors', async () => {
    const db = await open(await fresh(engine));
    for (const name of ['main', 'other']) await db.putSite({ ...SITE, name });
    for (const name of ['archive', 'files']) await db.putDestination({ name, plugin: 'sql', config: {} }, []);
    for (const t of ['main->archive', 'other->archive', 'main->files', 'other->files'])
      await db.setCursor(t, 'session-data', 5);
    db.markDelivered('archive', 'session-data|h|1');
    db.markDelivered('files', 'session-data|h|1');
    await db.recordFailure(undefined, 'archive', 'session-data|h|2', 'IC_ERR_X', 'x');
    await db.recordFailure(undefined, 'archive', 'session-data|h|2', 'IC_ERR_X', 'x');
    await db.recordFailure(undefined, 'files', 'session-data|h|2', 'IC_ERR_X', 'x');
    expect(await db.removeDestination('archive')).toEqual({ cursors: 2, delivered: 1, failedItems: 2 });
    expect((await db.cursors()).map((c) => c.transfer)).toEqual(['main->files', 'other->files']);
    expect(await db.deliveredCount()).toBe(1);
    expect(await db.failedItemCounts()).toEqual({ files: 1 });
    expect(await db.removeSite('other')).toEqual({ cursors: 1, delivered: 0, failedItems: 0 });
    expect((await db.cursors()).map((c) => c.transfer)).toEqual(['main->files']);
    expect(await db.deliveredCount('files')).toBe(1); // its keys name the host; the destination still holds it
    expect(await db.removeDestination('archive')).toBeUndefined();
  });

  it('keeps the ledger, cursors and runs; a ledger write that fails keeps its entries and holds the cursor', async () => {
    const db = await open(await fresh(engine));
    await fill(db);
    expect(await db.deliveredCount('archive')).toBe(1203);
    expect(await db.wasDelivered('archive', 'session-data|h|000007')).toBe(true);
    expect(await db.wasDelivered('archive', 'session-data|h|nope')).toBe(false);
    // Lookups asked in one turn go as batched queries (500 items each): every answer is still its own.
    const asked = Array.from({ length: 1300 }, (_, i) => `session-data|h|${String(i).padStart(6, '0')}`);
    const answers = await Promise.all([
      ...asked.map((item) => db.wasDelivered('archive', item)),
      db.wasDelivered('elsewhere', asked[0]!),
      db.wasDelivered('archive', asked[5]!),
    ]);
    expect(answers).toEqual([...asked.map((_, i) => i < 1203), false, true]);
    expect(await db.cursor('main→archive', 'session-data')).toBe(1_700_000_000);
    expect(await db.cursors()).toEqual([
      expect.objectContaining({ transfer: 'main→archive', dataType: 'session-data', position: 1_700_000_000 }),
    ]);
    const [run] = await db.runs('nightly', 1);
    expect(run).toMatchObject({ outcome: 'partly-failed', counts: { delivered: 1203, failed: 1 } });
    expect(typeof run!.id).toBe('number');
    expect(await db.failures()).toEqual([expect.objectContaining({ code: 'IC_ERR_X', item: 'session-data|h|x' })]);
    const open2 = await db.startRun('nightly');
    expect(open2).toBeGreaterThan(run!.id);
    expect(await db.closeAbandonedRuns('nightly')).toBe(1);

    // The ledger table goes away: the write fails, the entry stays pending (and counts as delivered in this
    // process), the cursor does not move; once the table is back the next flush writes it.
    await db.sql.run('ALTER TABLE delivered RENAME TO delivered_away');
    db.markDelivered('archive', 'session-data|h|late');
    await expect(db.setCursor('main→archive', 'session-data', 1_800_000_000)).rejects.toThrow();
    expect(await db.cursor('main→archive', 'session-data')).toBe(1_700_000_000);
    expect(await db.wasDelivered('archive', 'session-data|h|late')).toBe(true);
    await db.sql.run('ALTER TABLE delivered_away RENAME TO delivered');
    await db.setCursor('main→archive', 'session-data', 1_800_000_000);
    expect(await db.deliveredCount('archive')).toBe(1204);
    expect(await db.cursor('main→archive', 'session-data')).toBe(1_800_000_000);
  });

  it('prunes once a day: ledger entries past ledgerDays with the failures they closed, runs past runHistoryDays but the latest', async () => {
    const db = await open(await fresh(engine));
    const day = 86_400_000;
    const now = Date.parse('2026-12-01T00:00:00Z');
    const ago = (days: number) => new Date(now - days * day).toISOString();
    for (const [item, days] of [
      ['session-data|h|old', 130],
      ['session-data|h|closed-old', 121],
      ['session-data|h|closed-new', 119],
      ['session-data|h|new', 1],
    ] as const) {
      db.markDelivered('d', item);
      await db.flushDelivered();
      await db.sql.run(`UPDATE delivered SET delivered_at = ? WHERE item = ?`, [ago(days), item]);
      if (item.startsWith('session-data|h|closed'))
        await db.recordFailure(undefined, 'd', item, 'IC_ERR_X', 'failed before it was delivered');
    }
    await db.recordFailure(undefined, 'd', 'session-data|h|open', 'IC_ERR_X', 'still failing');
    const runs: Record<string, number[]> = { a: [], b: [] };
    for (const [schedule, days] of [
      ['a', 400],
      ['a', 370],
      ['a', 10],
      ['b', 500],
      ['b', 380], // b's latest: kept however old
    ] as const) {
      const id = await db.startRun(schedule);
      await db.finishRun(id, 'succeeded', {});
      await db.sql.run(`UPDATE run SET ended_at = ? WHERE id = ?`, [ago(days), id]);
      runs[schedule]!.push(id);
    }
    const unfinished = await db.startRun('a'); // under way (no end): never pruned

    expect(await db.prune({ ledgerDays: 120, runHistoryDays: 365 }, now)).toEqual({
      delivered: 2,
      failedItems: 1,
      runs: 3,
    });
    expect(await db.wasDelivered('d', 'session-data|h|old')).toBe(false);
    expect(await db.wasDelivered('d', 'session-data|h|closed-new')).toBe(true);
    expect(await db.deliveredCount('d')).toBe(2);
    // The failure an old entry had closed went with it (else it would be listed as open again); the open one stays.
    expect((await db.failedItems()).map((f) => f.item)).toEqual(['session-data|h|open']);
    expect((await db.failures()).map((f) => f.item).sort()).toEqual([
      'session-data|h|closed-new',
      'session-data|h|open',
    ]);
    expect((await db.runs(undefined, 10)).map((r) => r.id).sort((x, y) => x - y)).toEqual([
      runs.a![2],
      runs.b![1],
      unfinished,
    ]);
    // Not again within a day, whichever process asks; then again.
    db.markDelivered('d', 'session-data|h|later');
    await db.flushDelivered();
    await db.sql.run(`UPDATE delivered SET delivered_at = ? WHERE item = ?`, [ago(200), 'session-data|h|later']);
    expect(await db.prune({ ledgerDays: 120, runHistoryDays: 365 }, now + day - 1)).toBeUndefined();
    expect(await db.wasDelivered('d', 'session-data|h|later')).toBe(true);
    expect(await db.prune({ ledgerDays: 120, runHistoryDays: 365 }, now + day)).toEqual({
      delivered: 1,
      failedItems: 0,
      runs: 0,
    });
  });

  it("counts an item's retryable failures per run from the first, forgets them when given up, prunes them past ledgerDays", async () => {
    const db = await open(await fresh(engine));
    const t0 = Date.parse('2026-12-01T00:00:00Z');
    const http500 = { code: 'IC_ERR_SITE_UNAVAILABLE', message: 'HTTP 500' };
    expect(await db.noteRetryable('d', 'rec|h|1', http500, t0)).toEqual({ runs: 1, since: '2026-12-01T00:00:00.000Z' });
    expect(await db.noteRetryable('d', 'rec|h|1', { ...http500, message: 'HTTP 503' }, t0 + 3_600_000)).toEqual({
      runs: 2,
      since: '2026-12-01T00:00:00.000Z',
    });
    expect(await db.noteRetryable('other', 'rec|h|1', undefined, t0)).toMatchObject({ runs: 1 }); // per destination
    // The latest error is kept (ic failed list shows it); a count without one has none.
    expect((await db.retryingItems()).map((r) => [r.destination, r.code, r.message]).sort()).toEqual([
      ['d', 'IC_ERR_SITE_UNAVAILABLE', 'HTTP 503'],
      ['other', undefined, undefined],
    ]);
    await db.forgetRetrying('d', 'rec|h|1');
    expect(await db.noteRetryable('d', 'rec|h|1', http500, t0 + 7_200_000)).toEqual({
      runs: 1,
      since: '2026-12-01T02:00:00.000Z',
    });
    // Listed while not delivered since: an item delivered later is not (its row waits for the prune).
    await db.noteRetryable('d', 'session-recording|h|2', http500, t0);
    expect((await db.retryingItems({ destination: 'd' })).map((r) => [r.item, r.runs, r.lsid])).toEqual([
      ['session-recording|h|2', 1, '2'],
      ['rec|h|1', 1, '1'],
    ]);
    db.markDelivered('d', 'session-recording|h|2');
    expect((await db.retryingItems()).map((r) => `${r.destination} ${r.item}`)).toEqual(['other rec|h|1', 'd rec|h|1']);
    await db.prune({ ledgerDays: 120, runHistoryDays: 365 }, t0 + 121 * 86_400_000);
    expect(await db.noteRetryable('d', 'rec|h|1', http500, t0 + 121 * 86_400_000)).toMatchObject({ runs: 1 });
    // A site removed: no run will try its items again (another site of the same host would).
    await db.putSite({ ...SITE, name: 'a', host: 'h' });
    await db.putSite({ ...SITE, name: 'b', host: 'h' });
    await db.noteRetryable('d', 'rec|other-host|3');
    await db.removeSite('a');
    expect((await db.retryingItems()).map((r) => r.item).sort()).toEqual(['rec|h|1', 'rec|other-host|3']);
    await db.removeSite('b');
    expect((await db.retryingItems()).map((r) => r.item)).toEqual(['rec|other-host|3']);
    expect(await db.removeDestination('other')).toBeUndefined(); // no such destination: nothing forgotten
  });

  it('leases: one holder at a time across connections; a gone holder is taken over; renewals are compare-and-set', async () => {
    const connection = await fresh(engine);
    const [a, b] = [await open(connection), await open(connection)];
    expect(await a.tryLease('schedule:x', 'A', 60)).toBe(true);
    expect(await b.tryLease('schedule:x', 'B', 60)).toBe(false);
    expect(await a.tryLease('schedule:x', 'A', 60)).toBe(true); // renewal
    expect(await b.tryLease('schedule:x', 'B', 60, (h) => h === 'A')).toBe(true); // A is gone
    expect(await a.tryLease('schedule:x', 'A', 60)).toBe(false);
    expect((await a.leases()).map((l) => l.holder)).toEqual(['B']);
    // Many contenders at once: exactly one wins.
    const wins = await Promise.all(['C', 'D', 'E', 'F'].map((h, i) => (i % 2 ? a : b).tryLease('schedule:y', h, 60)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    await b.releaseLease('schedule:x', 'B');
    expect(await a.tryLease('schedule:x', 'A', 60)).toBe(true);
  });

  it('upgrades a database of schema 2 (the version before `retrying`) in place, keeping what it holds', async () => {
    const connection = await fresh(engine);
    const old = await SettingsDb.open(connection, box);
    await fill(old);
    await old.sql.run(`DROP TABLE retrying`);
    await old.sql.run(`UPDATE ic_settings_meta SET "value" = '2' WHERE "key" = 'schema_version'`);
    await old.close();
    const db = await open(connection);
    expect(db.schemaVersion()).toBe(4);
    expect((await db.site('main')).clientSecret).toBe(SITE.clientSecret);
    expect(await db.noteRetryable('archive', 'session-data|h|1')).toMatchObject({ runs: 1 });
  });

  it('upgrades a database of schema 3 (before the latest error of a retried item) in place, keeping its counts', async () => {
    const connection = await fresh(engine);
    const old = await SettingsDb.open(connection, box);
    await fill(old);
    await old.noteRetryable('archive', 'session-recording|h|1');
    await old.noteRetryable('archive', 'session-recording|h|1');
    await old.sql.run(`ALTER TABLE retrying DROP COLUMN code`);
    await old.sql.run(`ALTER TABLE retrying DROP COLUMN message`);
    await old.sql.run(`UPDATE ic_settings_meta SET "value" = '3' WHERE "key" = 'schema_version'`);
    await old.close();
    const db = await open(connection);
    expect(db.schemaVersion()).toBe(4);
    expect(await db.retryingItems()).toEqual([expect.objectContaining({ item: 'session-recording|h|1', runs: 2 })]);
    expect((await db.retryingItems())[0]).not.toHaveProperty('code');
    const http500 = { code: 'IC_ERR_SITE_UNAVAILABLE', message: 'HTTP 500' };
    expect(await db.noteRetryable('archive', 'session-recording|h|1', http500)).toMatchObject({ runs: 3 });
    expect(await db.retryingItems()).toEqual([expect.objectContaining({ ...http500, runs: 3 })]);
  });

  it('opens concurrently on an empty database: the migration runs once under its lock', async () => {
    const connection = await fresh(engine);
    const dbs = await Promise.all([1, 2, 3].map(() => open(connection)));
    for (const db of dbs) expect(db.schemaVersion()).toBe(4);
    await dbs[0]!.putSite(SITE);
    expect((await dbs[2]!.sites()).map((s) => s.name)).toEqual(['main']);
  });
});

// A data directory whose disk is full answered every command with "error: disk I/O error" and nothing more.
it.runIf(isRoot)(
  'a SQLite settings database on a full disk is refused with a coded error that says the disk is full',
  async () => {
    const fs = await tmpfs('size=256k');
    const dir = fs.dir;
    try {
      const existing = await SettingsDb.open(`sqlite:${join(dir, 'settings.db')}`, box);
      await existing.putSite(SITE);
      await existing.close();
      await writeFile(join(dir, 'filler'), Buffer.alloc(256 * 1024)).catch(() => undefined);
      for (const file of ['settings.db', 'fresh.db'])
        await expect(SettingsDb.open(`sqlite:${join(dir, file)}`, box), file).rejects.toMatchObject({
          code: 'IC_ERR_SETTINGS_DB_UNAVAILABLE',
          message: expect.stringMatching(
            /cannot be opened or written \(SQLITE_\w+: .*\); the file system of \S+ is full/,
          ),
        });
    } finally {
      fs.done();
    }
  },
);

describe('copySettings (ic settings migrate) between engines', () => {
  it('copies SQLite → PostgreSQL → SQLite with every row, sealed secrets, run ids and the ledger intact', async () => {
    const first = await open(await fresh('sqlite'));
    await fill(first);
    const pg = await open(await fresh('postgres'));
    const report = await copySettings(first, pg);
    expect(report.rows).toMatchObject({ site: 1, destination: 1, schedule: 1, cursor: 1, delivered: 1203, run: 1 });
    expect(report.rows.failed_item).toBe(1);
    expect(report.rows.ic_settings_meta).toBe(1); // the application settings (schema_version is the target's own)
    const back = await open(await fresh('sqlite'));
    await copySettings(pg, back);
    for (const db of [pg, back]) {
      expect(await db.site('main')).toMatchObject({ clientSecret: 'the-client-secret', backupPassword: 'backup-pw' });
      expect((await db.application()).notification?.password).toBe('smtp-pw');
      expect(await db.deliveredCount()).toBe(1203);
      expect(await db.wasDelivered('archive', 'session-data|h|001202')).toBe(true);
      expect(await db.cursor('main→archive', 'session-data')).toBe(1_700_000_000);
      expect((await db.runs()).map((r) => [r.id, r.outcome])).toEqual(
        (await first.runs()).map((r) => [r.id, r.outcome]),
      );
      expect(await db.failures()).toEqual(await first.failures());
      // New runs continue after the copied ids (PostgreSQL's identity sequence was moved on).
      expect(await db.startRun('nightly')).toBeGreaterThan((await first.runs())[0]!.id);
    }
    // Sealed values are copied as they are, not re-sealed.
    expect(await pg.sql.all('SELECT settings FROM site')).toEqual(await first.sql.all('SELECT settings FROM site'));
  });

  it('refuses a target that holds settings (unless replace), the database in use, and a running schedule', async () => {
    const a = await open(await fresh('sqlite'));
    await fill(a);
    const pgConnection = await fresh('postgres');
    const b = await open(pgConnection);
    await b.putSite({ ...SITE, name: 'other' });
    await expect(copySettings(a, b)).rejects.toMatchObject({
      code: 'IC_ERR_CONFIG_INVALID',
      message: expect.stringMatching(/already holds settings \(site: 1\).*--replace/),
    });
    expect((await b.sites()).map((s) => s.name)).toEqual(['other']); // untouched
    await copySettings(a, b, { replace: true });
    expect((await b.sites()).map((s) => s.name)).toEqual(['main']);
    await expect(copySettings(b, await open(pgConnection))).rejects.toThrow(/in use already/);
    await a.tryLease('schedule:nightly', 'someone', 60);
    const c = await open(await fresh('sqlite'));
    await expect(copySettings(a, c)).rejects.toThrow(/a schedule is running \(schedule:nightly\)/);
    expect(await c.sites()).toEqual([]);
  });
});

it('the SQLite file holds no secret in plain text', async () => {
  const connection = await fresh('sqlite');
  const db = await open(connection);
  await fill(db);
  await db.close();
  const bytes = await readFile(connection.slice('sqlite:'.length));
  for (const secret of ['the-client-secret', 'backup-pw', 'db-pw', 'smtp-pw'])
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
});
