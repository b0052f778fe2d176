/**
 * `ic failed list | retry | dismiss` through the built binary: items that failed for good in a scheduled run (a
 * recording the appliance would not serve, a session entry the client could not read) are listed, delivered again
 * exactly once after the cause is gone, or given up on; the appliance simulator runs over HTTPS in this process.
 */
import { readdir, readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { API, SecretBox, SettingsDb } from '@integration-client/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFilesDestination, addSimulatorSite, addSqlDestination, holdPair, runIc } from './ic-helpers.js';
import { ApplianceSimulator } from './simulator/index.js';

let home: string;
let sim: ApplianceSimulator;
const ic = (...args: string[]) => runIc(home, args);

interface Listed {
  id: number;
  destination: string;
  item: string;
  operation: string;
  lsid: string;
  code: string;
  message: string;
  attempts: number;
}
const listed = async (...more: string[]) => {
  const r = await ic('failed', 'list', '--json', ...more);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { items: Listed[] }).items;
};
/** Recording files under `dir` (any depth). */
const recordings = async (dir: string) =>
  (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.flv')).sort();

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ic-failed-'));
  sim = new ApplianceSimulator({ sessions: 12, recordingBytes: 3000 });
  const a = await sim.start();
  await ic('init');
  expect((await addSimulatorSite(home, a, ApplianceSimulator.caFile)).code).toBe(0);
});
afterAll(async () => {
  await sim.stop();
});

describe('ic failed (built binary)', () => {
  it('lists a recording the appliance would not serve, delivers it on retry exactly once, and the list empties', async () => {
    const files = join(home, 'files');
    expect((await addFilesDestination(home, files)).code).toBe(0);
    expect(
      (await ic('schedule', 'add', 'rec', '--every', '1h', '--transfer', 'main:files:session-data,session-recording'))
        .code,
    ).toBe(0);
    expect((await listed()).length).toBe(0);
    sim.faults.inject('error-doc', 1, API.reports.sessionRecording); // the first recording asked for
    const run = await ic('schedule', 'run', 'rec');
    expect(run.code).toBe(1); // partly failed
    expect(run.stdout).toMatch(/1 item\(s\) failed for good, the cursor moved on without them: ic failed list/);
    // Logged as an error (so mailed when notifications are set up), saying where to look.
    expect((await ic('logs', '-n', '200')).stdout).toMatch(
      /delivery failed for good; recorded as a failed item \(ic failed list\), the others go on/,
    );
    const status = () => ic('service', 'status', '--unit-dir', home);
    expect((await status()).stdout).toMatch(/^failed items: 1 open \(ic failed list\)$/m);
    expect((await ic('schedule', 'show', 'rec')).stdout).toMatch(
      /^failed items of files: 1 open \(ic failed list --destination files\)$/m,
    );
    const withRecording = sim.closedSessions().filter((s) => s.hasRecording);
    expect((await recordings(files)).length).toBe(withRecording.length - 1);

    const [failed, ...more] = await listed();
    expect(more).toEqual([]);
    expect(failed).toMatchObject({ destination: 'files', operation: 'session-recording', attempts: 1 });
    expect(failed!.code).toBe('IC_ERR_SITE_API_ERROR');
    expect(withRecording.map((s) => s.lsid)).toContain(failed!.lsid);
    expect(failed!.item).toBe(`session-recording|${sim.address.host}|${failed!.lsid}`);
    const text = await ic('failed', 'list');
    expect(text.stdout).toContain(failed!.lsid);
    expect(text.stdout).toMatch(/ic failed retry <id…>/);

    // The cursor moved on (the rest of the window was delivered): another run does not bring it back.
    expect((await ic('schedule', 'run', 'rec')).code).toBe(0);
    expect((await listed()).length).toBe(1);

    // A run elsewhere moves main->files for 5 more seconds: the retry waits for it, as a scheduled run would.
    holdPair(home, 'main->files', 'elsewhere:1 run 3', 5);
    const retry = await ic('failed', 'retry', '--all', '--json');
    expect(retry.code).toBe(0);
    expect(retry.stderr).toBe(
      'main->files waits: another run is moving this pair (elsewhere:1 run 3); it goes on from where that one leaves off\n',
    );
    expect(JSON.parse(retry.stdout)).toMatchObject({
      ok: true,
      delivered: 1,
      open: 0,
      results: [{ id: failed!.id, result: 'delivered', operation: 'session-recording' }],
    });
    const now = await recordings(files);
    expect(now.length).toBe(withRecording.length); // each once: no `x.1.flv` beside another
    const mine = now.filter((f) => f.includes(failed!.lsid));
    expect(mine.length).toBe(1);
    expect((await readFile(join(files, mine[0]!))).length).toBe(3000);
    expect(await listed()).toEqual([]);
    expect((await status()).stdout).not.toMatch(/failed items/);
    expect(JSON.parse((await ic('schedule', 'show', 'rec', '--json')).stdout)).toMatchObject({ failedItems: {} });

    // The ledger has it: a later run whose overlap brings the session again skips it.
    const settings = new Database(join(home, 'settings.db'), { readonly: true });
    try {
      const row = settings
        .prepare(`SELECT COUNT(*) AS n FROM delivered WHERE destination = 'files' AND item = ?`)
        .get(failed!.item) as { n: number };
      expect(row.n).toBe(1);
    } finally {
      settings.close();
    }
  });

  it('an item that fails again stays listed with its attempts; dismiss takes it off; bad ids are refused', async () => {
    expect((await addFilesDestination(home, join(home, 'files2'), 'files2')).code).toBe(0);
    expect(
      (await ic('schedule', 'add', 'rec2', '--every', '1h', '--transfer', 'main:files2:session-recording')).code,
    ).toBe(0);
    sim.faults.inject('error-doc', 1, API.reports.sessionRecording);
    expect((await ic('schedule', 'run', 'rec2')).code).toBe(1);
    const [first] = await listed('--destination', 'files2');
    expect(first).toBeDefined();

    sim.faults.inject('error-doc', 1, API.reports.sessionRecording);
    const retry = await ic('failed', 'retry', String(first!.id));
    expect(retry.code).toBe(1);
    expect(retry.stdout).toMatch(/failed again: IC_ERR_SITE_API_ERROR/);
    expect(retry.stdout).toMatch(/0 of 1 delivered; 1 still open/);
    const [second, ...more] = await listed('--destination', 'files2');
    expect(more).toEqual([]);
    expect(second).toMatchObject({ item: first!.item, attempts: 2 });
    expect(second!.id).toBeGreaterThan(first!.id);

    // Refused before anything is done: no selection, an id that is not open (the older attempt's), not a number.
    for (const args of [[], [String(first!.id)], ['x1'], ['--all', String(second!.id)]]) {
      const r = await ic('failed', 'dismiss', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/IC_ERR_CONFIG_INVALID/);
    }
    const dismissed = await ic('failed', 'dismiss', String(second!.id), '--json');
    expect(dismissed.code).toBe(0);
    expect(JSON.parse(dismissed.stdout)).toEqual({
      dismissed: [{ id: second!.id, destination: 'files2', item: second!.item }],
    });
    expect(await listed('--destination', 'files2')).toEqual([]);
    const logs = await ic('logs', '-n', '50');
    expect(logs.stdout).toMatch(/failed items dismissed by the operator/);
  });

  it('a presentation recording that failed is pulled by its presentation id on retry', async () => {
    const files = join(home, 'files3');
    expect((await addFilesDestination(home, files, 'files3')).code).toBe(0);
    expect(
      (await ic('schedule', 'add', 'pres', '--every', '1h', '--transfer', 'main:files3:presentation-recording')).code,
    ).toBe(0);
    sim.faults.inject('error-doc', 1, API.reports.presentationRecording);
    expect((await ic('schedule', 'run', 'pres')).code).toBe(1);
    const before = await recordings(files);
    const [failed] = await listed('--destination', 'files3');
    expect(failed).toMatchObject({ operation: 'presentation-recording', attempts: 1 });
    const retry = await ic('failed', 'retry', String(failed!.id), '--json');
    expect(retry.code, retry.stdout).toBe(0);
    const after = await recordings(files);
    expect(after.length).toBe(before.length + 1);
    expect(after.filter((f) => f.includes(failed!.lsid))).toHaveLength(1);
    expect(await listed('--destination', 'files3')).toEqual([]);
  });

  it('a session entry the client could not read fails each data type into SQL; once readable, retry lands it once', async () => {
    const sqlFile = join(home, 'archive.db');
    expect((await addSqlDestination(home, 'archive', `sqlite:${sqlFile}`)).code).toBe(0);
    expect(
      (
        await ic(
          'schedule',
          'add',
          'data',
          '--every',
          '1h',
          '--transfer',
          'main:archive:session-data,system-information',
        )
      ).code,
    ).toBe(0);
    const bad = sim.closedSessions()[4]!;
    sim.invalidSessions.add(bad.index);
    expect((await ic('schedule', 'run', 'data')).code).toBe(1);
    const items = await listed('--destination', 'archive');
    expect(items.map((i) => [i.operation, i.lsid, i.code]).sort()).toEqual([
      ['session-data', bad.lsid, 'IC_ERR_SITE_SESSION_INVALID'],
      ['system-information', bad.lsid, 'IC_ERR_SITE_SESSION_INVALID'],
    ]);
    const rows = (sql: string) => {
      const db = new Database(sqlFile, { readonly: true });
      try {
        return (db.prepare(sql).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    expect(rows(`SELECT COUNT(*) AS n FROM session WHERE lsid = '${bad.lsid}'`)).toBe(0);
    expect(rows('SELECT COUNT(*) AS n FROM session')).toBe(sim.closedSessions().length - 1);

    sim.invalidSessions.delete(bad.index); // e.g. a newer client that reads it
    const retry = await ic('failed', 'retry', '--destination', 'archive', '--json');
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(JSON.parse(retry.stdout)).toMatchObject({ ok: true, delivered: 2, open: 0 });
    expect(rows(`SELECT COUNT(*) AS n FROM session WHERE lsid = '${bad.lsid}'`)).toBe(1);
    expect(rows('SELECT COUNT(*) AS n FROM session')).toBe(sim.closedSessions().length);
    expect(await listed()).toEqual([]);
  });

  it('lists a recording the appliance answers with a server error every time as still retried, until it is delivered', async () => {
    const files = join(home, 'files-500');
    expect((await addFilesDestination(home, files, 'files500')).code).toBe(0);
    expect(
      (await ic('schedule', 'add', 'r500', '--every', '1h', '--transfer', 'main:files500:session-recording')).code,
    ).toBe(0);
    const bad = sim.closedSessions().find((s) => s.hasRecording)!;
    sim.brokenRecordings.add(bad.lsid);
    try {
      expect((await ic('schedule', 'run', 'r500')).code).toBe(1);
      expect((await ic('schedule', 'run', 'r500')).code).toBe(1);
    } finally {
      sim.brokenRecordings.clear();
    }
    const json = JSON.parse((await ic('failed', 'list', '--json', '--destination', 'files500')).stdout) as {
      items: unknown[];
      retrying: { item: string; operation: string; lsid: string; runs: number; since: string; code: string }[];
    };
    expect(json.items).toEqual([]); // not failed for good: a day has not passed
    expect(json.retrying).toEqual([
      {
        destination: 'files500',
        item: `session-recording|${sim.address.host}|${bad.lsid}`,
        operation: 'session-recording',
        host: sim.address.host,
        lsid: bad.lsid,
        runs: 2,
        since: expect.stringMatching(/Z$/),
        code: 'IC_ERR_SITE_UNAVAILABLE',
        message: expect.stringMatching(/HTTP 500$/),
      },
    ]);
    const text = (await ic('failed', 'list', '--destination', 'files500')).stdout;
    expect(text).toMatch(
      /^still retried by every run, holding their data type's cursor back \(each becomes a failed item after 3 runs and 24 h\):$/m,
    );
    expect(text).toMatch(
      new RegExp(`files500 +session-recording +\\S+ +${bad.lsid} +2 +IC_ERR_SITE_UNAVAILABLE: .*HTTP 500$`, 'm'),
    );
    expect((await ic('service', 'status', '--unit-dir', home)).stdout).toMatch(
      /^items still retried, holding a cursor back: 1 \(ic failed list\)$/m,
    );
    expect((await ic('schedule', 'show', 'r500')).stdout).toMatch(
      /^still retried by main->files500: 1 item\(s\), holding a cursor back until given up on \(ic failed list --destination files500\)$/m,
    );
    expect(JSON.parse((await ic('schedule', 'show', 'r500', '--json')).stdout)).toMatchObject({
      retrying: { 'main->files500': 1 },
    });
    // Served again: the next run delivers it and the list no longer has it.
    expect((await ic('schedule', 'run', 'r500')).code).toBe(0);
    expect((await recordings(files)).filter((f) => f.includes(bad.lsid))).toHaveLength(1);
    expect(JSON.parse((await ic('failed', 'list', '--json')).stdout)).toMatchObject({ retrying: [] });
  });

  it('says when the appliance no longer has the session, and keeps the item until it is dismissed', async () => {
    // A failure recorded long ago for a session the appliance has since let go of (it keeps 90 days at most).
    const db = await SettingsDb.open(
      `sqlite:${join(home, 'settings.db')}`,
      await SecretBox.open(join(home, 'secret.key')),
    );
    const gone = 'f'.repeat(32);
    try {
      await db.recordFailure(undefined, 'files', `session-recording|${sim.address.host}|${gone}`, 'IC_ERR_X', 'old');
      // And one from a site since removed.
      await db.recordFailure(undefined, 'files', `session-data|gone.example.com|${gone}`, 'IC_ERR_X', 'old');
    } finally {
      await db.close();
    }
    const retry = await ic('failed', 'retry', '--all');
    expect(retry.code).toBe(1);
    expect(retry.stdout).toMatch(new RegExp(`the appliance did not return session ${gone}`));
    expect(retry.stdout).toMatch(
      /not delivered: no site has host gone\.example\.com now: add it again \(ic site add\) or dismiss the item/,
    );
    expect((await listed()).map((i) => i.lsid)).toEqual([gone, gone]);
    expect((await ic('failed', 'dismiss', '--all')).code).toBe(0);
    expect(await listed()).toEqual([]);
  });

  it('a scheduled run whose overlap delivers failed items takes them off the list, recordings of an unreadable entry too', async () => {
    const files = join(home, 'files5');
    expect((await addFilesDestination(home, files, 'files5')).code).toBe(0);
    expect(
      (
        await ic(
          'schedule',
          'add',
          'ovl',
          '--every',
          '1h',
          '--transfer',
          'main:files5:session-data,command-shell-recording,show-my-screen-recording',
        )
      ).code,
    ).toBe(0);
    expect((await ic('settings', 'set', '--overlap-seconds', String(30 * 86400))).code).toBe(0); // every run re-reads it all
    try {
      const closed = sim.closedSessions();
      const shells = closed.find((s) => s.shellInstances > 0 && s.smsInstances === 0)!;
      sim.invalidSessions.add(shells.index);
      sim.faults.inject('error-doc', 1, API.reports.showMyScreenRecording);
      expect((await ic('schedule', 'run', 'ovl')).code).toBe(1);
      const failed = await listed('--destination', 'files5');
      expect(
        failed
          .filter((i) => i.lsid === shells.lsid)
          .map((i) => i.operation)
          .sort(),
      ).toEqual([
        'command-shell-recording', // no instance: every one of that session, whose recordings were not known
        'session-data',
        'show-my-screen-recording',
      ]);
      expect(failed.filter((i) => i.lsid !== shells.lsid).map((i) => i.operation)).toEqual([
        'show-my-screen-recording',
      ]);

      sim.invalidSessions.delete(shells.index);
      const next = await ic('schedule', 'run', 'ovl');
      expect(next.code, next.stdout).toBe(0);
      expect(await listed('--destination', 'files5')).toEqual([]);
      const raw = new Database(join(home, 'settings.db'), { readonly: true });
      try {
        expect(raw.prepare(`SELECT COUNT(*) AS n FROM failed_item WHERE destination = 'files5'`).get()).toEqual({
          n: 0,
        });
      } finally {
        raw.close();
      }
      const shellFiles = (await recordings(files)).filter((f) => f.includes(shells.lsid));
      expect(shellFiles).toHaveLength(shells.shellInstances);
    } finally {
      await ic('settings', 'set', '--overlap-seconds', '3600');
    }
  });
});
