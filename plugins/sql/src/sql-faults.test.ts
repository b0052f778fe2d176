/**
 * Faults on real servers: the database going away mid-run, a user without rights, an unreachable server, a
 * locked SQLite file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isIcError } from '@integration-client/plugin-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConnectionString } from './connection-string.js';
import { openSqlite } from './drivers/sqlite.js';
import { sampleSessions } from './sample-sessions.js';
import { sessionRows } from './rows.js';
import { SessionStore } from './session-store.js';
import { toDestinationError } from './db-errors.js';
import {
  counts,
  createDatabase,
  CuttableProxy,
  deliver,
  makeDestination,
  sessionItem,
  type TestDatabase,
} from './test-helpers.js';

describe.each(['postgres', 'mysql'] as const)('%s faults', (engine) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDatabase(engine);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('the database going away mid-transaction fails every write retryable, stores and acknowledges nothing, and the redelivery lands', async () => {
    const url = new URL(db.connectionString);
    const proxy = await new CuttableProxy({ host: url.hostname, port: Number(url.port) }).start();
    url.port = String(proxy.port);
    const { dest } = await makeDestination({ connectionString: url.href, batchSize: 500 });
    const [first, ...rest] = sampleSessions({ count: 301, events: 50, host: 'gone.example.com' });
    expect((await deliver(dest, sessionItem(first!))).status).toBe('written');
    proxy.cutAfter(200_000); // well into the INSERTs of the next transaction
    const results = await Promise.allSettled(rest.map((s) => deliver(dest, sessionItem(s))));
    const codes = new Set(
      results.map((r) => (r.status === 'rejected' && isIcError(r.reason) ? r.reason.code : r.status)),
    );
    expect([...codes]).toEqual(['IC_ERR_DESTINATION_UNAVAILABLE']);
    expect(results.every((r) => r.status === 'rejected' && (r.reason as { retryable: boolean }).retryable)).toBe(true);
    expect((await counts(db)).session).toBe(1);
    await proxy.restore();
    const again = await Promise.all(rest.map((s) => deliver(dest, sessionItem(s))));
    expect(again.every((a) => a.status === 'written')).toBe(true);
    const n = await counts(db);
    expect(n.session).toBe(301);
    expect(n.session_event).toBe(301 * 50);
    await dest.close();
    proxy.cut();
  });

  it('check() says in words which right the user lacks', async () => {
    const user = `ic_ro_${process.pid}`;
    const url = new URL(db.connectionString);
    if (engine === 'postgres') {
      await db.sql(`DROP ROLE IF EXISTS ${user}`);
      await db.sql(`CREATE ROLE ${user} LOGIN`);
      await db.sql(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    } else {
      await db.sql(`DROP USER IF EXISTS '${user}'@'%'`);
      await db.sql(`CREATE USER '${user}'@'%'`);
      await db.sql(`GRANT SELECT ON ${url.pathname.slice(1)}.* TO '${user}'@'%'`);
    }
    try {
      url.username = user;
      url.password = '';
      const { dest } = await makeDestination({ connectionString: url.href });
      const check = await dest.check();
      expect(check.ok).toBe(false);
      expect(check.steps[0]).toMatchObject({ name: 'connect', ok: true });
      const failed = check.steps.find((s) => !s.ok)!;
      expect(failed.name).toBe('tables');
      expect(failed.message).toMatch(/the database refused .*give the connection's user the rights/);
      await expect(deliver(dest, sessionItem(sampleSessions({ count: 1 })[0]!))).rejects.toThrow(
        expect.objectContaining({ code: 'IC_ERR_DESTINATION_PERMISSION_DENIED', retryable: true }),
      );
      await dest.close();
    } finally {
      if (engine === 'postgres') {
        await db.sql(`GRANT CREATE ON SCHEMA public TO PUBLIC`);
        await db.sql(`DROP OWNED BY ${user}`);
        await db.sql(`DROP ROLE IF EXISTS ${user}`);
      } else await db.sql(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });

  it('an unreachable server fails check() at connect and deliveries retryable', async () => {
    const url = new URL(db.connectionString);
    url.port = '1';
    const { dest } = await makeDestination({ connectionString: url.href });
    const check = await dest.check();
    expect(check.steps).toEqual([
      { name: 'connect', ok: false, message: expect.stringMatching(/cannot be reached \(ECONNREFUSED\)/) },
    ]);
    expect(check.steps[0]!.message).not.toContain(url.href);
    await expect(deliver(dest, sessionItem(sampleSessions({ count: 1 })[0]!))).rejects.toThrow(
      expect.objectContaining({ code: 'IC_ERR_DESTINATION_UNAVAILABLE', retryable: true }),
    );
    await dest.close();
  });

  // A standby or a database set read-only (MariaDB has no read-only database of its own: its error shapes are unit-tested).
  it.runIf(engine === 'postgres')(
    'a database that takes no writes (a standby, read-only) is destination-wide and says so; writable again, the write lands',
    async () => {
      const name = new URL(db.connectionString).pathname.slice(1);
      const readOnly = (on: boolean) =>
        db.sql(`ALTER DATABASE "${name}" SET default_transaction_read_only = ${on ? 'on' : 'off'}`);
      const [first, second] = sampleSessions({ count: 2, host: 'ro.example.com' });
      const stored = (await counts(db)).session ?? 0; // this database is shared with the other tests of the engine
      const before = await makeDestination({ connectionString: db.connectionString });
      expect((await deliver(before.dest, sessionItem(first!))).status).toBe('written'); // tables in place
      await before.dest.close();
      await readOnly(true); // for connections opened from now on
      try {
        const { dest } = await makeDestination({ connectionString: db.connectionString });
        await expect(deliver(dest, sessionItem(second!))).rejects.toThrow(
          expect.objectContaining({
            code: 'IC_ERR_DESTINATION_PERMISSION_DENIED',
            retryable: true,
            message: expect.stringMatching(/takes no writes .*connect to the primary/),
          }),
        );
        await dest.close();
      } finally {
        await readOnly(false);
      }
      const after = await makeDestination({ connectionString: db.connectionString });
      expect((await deliver(after.dest, sessionItem(second!))).status).toBe('written');
      await after.dest.close();
      expect((await counts(db)).session).toBe(stored + 2);
    },
  );

  it('a database that is not on the server (dropped, not restored yet) is destination-wide: one coded error, not one per session', async () => {
    const url = new URL(db.connectionString);
    url.pathname = `/${url.pathname.slice(1)}_gone`;
    const { dest } = await makeDestination({ connectionString: url.href });
    const check = await dest.check();
    expect(check.steps).toEqual([
      { name: 'connect', ok: false, message: expect.stringMatching(/the database is not on the server .*create it/) },
    ]);
    const sessions = sampleSessions({ count: 3 });
    const all = await Promise.allSettled(sessions.map((s) => deliver(dest, sessionItem(s))));
    for (const r of all)
      expect(r).toMatchObject({
        status: 'rejected',
        reason: { code: 'IC_ERR_DESTINATION_UNAVAILABLE', retryable: true },
      });
    await dest.close();
  });
});

describe('sqlite faults', () => {
  it('a file locked by another writer fails retryable, and the write lands once the lock is gone', async () => {
    const db = await createDatabase('sqlite');
    const file = parseConnectionString(db.connectionString).file!;
    const store = new SessionStore(openSqlite(file, { busyTimeoutMs: 50 }));
    await store.migrate();
    const other = openSqlite(file);
    const [s] = sampleSessions({ count: 1 }).map((x) => sessionRows(x, true));
    let release!: () => void;
    const holding = other.transaction(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 20));
    const err = await store.writeSessions([s!]).catch((e: unknown) => toDestinationError(e, 'storing'));
    expect(err).toMatchObject({ code: 'IC_ERR_DESTINATION_WRITE_FAILED', retryable: true });
    release();
    await holding;
    expect(await store.writeSessions([s!])).toEqual(['written']);
    await other.close();
  });

  it.runIf(process.getuid?.() === 0)(
    'a full disk under the database fails the deliveries as FULL, acknowledges nothing unstored, and the writes land once there is space (real tmpfs)',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ic-sql-full-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      try {
        const { dest } = await makeDestination({ connectionString: `sqlite:${dir}/full.db`, batchSize: 500 });
        expect((await dest.check()).ok).toBe(true);
        const sessions = sampleSessions({ count: 400, events: 50, host: 'full.example.com' });
        const results = await Promise.allSettled(sessions.map((x) => deliver(dest, sessionItem(x))));
        const rejected = results.filter((r) => r.status === 'rejected');
        expect(rejected.length).toBeGreaterThan(0);
        for (const r of rejected)
          expect(r.reason).toMatchObject({
            code: 'IC_ERR_DESTINATION_FULL',
            retryable: true,
            message: expect.stringMatching(/no space left .*free space/),
          });
        const acked = results.length - rejected.length;
        const file = new Database(`${dir}/full.db`, { readonly: true });
        const stored = (file.prepare('SELECT COUNT(*) AS n FROM session').get() as { n: number }).n;
        file.close();
        expect(stored).toBe(acked); // nothing acknowledged that is not stored, nothing stored half
        execFileSync('mount', ['-o', 'remount,size=64m', dir]);
        const again = await Promise.all(sessions.map((x) => deliver(dest, sessionItem(x))));
        expect(again.filter((a) => a.status === 'written')).toHaveLength(rejected.length);
        await dest.close();
      } finally {
        execFileSync('umount', [dir]);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('an SQLite path in a missing directory fails check() at connect with a coded error', async () => {
    const { dest } = await makeDestination({ connectionString: 'sqlite:/nonexistent-dir/x/sessions.db' });
    const check = await dest.check();
    expect(check.ok).toBe(false);
    expect(check.steps[0]!.name).toBe('connect');
    await dest.close();
  });
});
