/**
 * The transfer engine end to end: appliance simulator over HTTPS → site client → report parser → engine →
 * the File System and SQL plugins (loaded from their packages), with a real SQLite settings database.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  API,
  DestinationLoader,
  PluginCatalog,
  ScheduleRunner,
  SecretBox,
  SettingsDb,
  SiteClient,
  TransferEngine,
  transferId,
  type EngineOptions,
  type IsolationOptions,
  type OpenDestination,
} from '@integration-client/core';
import {
  DestinationError,
  MODEL_JSON,
  OPERATIONS,
  PluginError,
  type PresentationDataItem,
  type Operation,
  type RecordingItem,
  type RecordingMeta,
  type SessionDataItem,
} from '@integration-client/plugin-sdk';
import { sampleSession, sampleSessionXml } from '@integration-client/plugin-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';
import { captureLogger, collectGarbage, FAST_RETRY } from './site-helpers.js';
import { ApplianceSimulator, type SimulatorOptions } from './simulator/index.js';
import { isRoot, tmpfs } from './tmpfs.js';

const BUNDLED = [join(REPO_ROOT, 'plugins/file-system'), join(REPO_ROOT, 'plugins/sql')];
const ALL_FILE_TYPES = OPERATIONS.filter((op) => op !== 'system-information');

interface Rig {
  sim: ApplianceSimulator;
  db: SettingsDb;
  runner: ScheduleRunner;
  /** Another runner on the same settings database, as another process has (`ic schedule run` beside the service). */
  otherRunner: () => ScheduleRunner;
  files: string;
  sqlFile: string;
  home: string;
  log: ReturnType<typeof captureLogger>;
}

const open: Rig[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    await r.db.close();
    await r.sim.stop();
  }
});

async function rig(
  sim: SimulatorOptions,
  engine: EngineOptions = { overlapSeconds: 3600, settleSeconds: 0 },
  /** The settings database (default: SQLite in the temporary data directory). */
  settings?: string,
): Promise<Rig> {
  const home = await mkdtemp(join(tmpdir(), 'ic-engine-'));
  const s = new ApplianceSimulator({ recordingBytes: 2048, backupBytes: 4096, ...sim });
  const a = await s.start();
  const box = await SecretBox.open(join(home, 'secret.key'), {});
  const db = await SettingsDb.open(settings ?? `sqlite:${join(home, 'settings.db')}`, box);
  const log = captureLogger();
  const files = join(home, 'files');
  const sqlFile = join(home, 'sessions.db');
  await db.putSite({
    name: 'main',
    host: a.host,
    clientId: a.clientId,
    clientSecret: a.clientSecret,
    caFile: ApplianceSimulator.caFile,
  });
  await db.putDestination({ name: 'files', plugin: 'file-system', config: { destinationDirectory: files } }, []);
  await db.putDestination({ name: 'archive', plugin: 'sql', config: { connectionString: `sqlite:${sqlFile}` } }, [
    'connectionString',
  ]);
  await db.putSchedule({
    name: 'nightly',
    period: '1d',
    enabled: true,
    transfers: [
      { site: 'main', destination: 'files', dataTypes: [...ALL_FILE_TYPES] },
      // Named after the data it attaches to, as a user may: the engine delivers session data first all the same.
      { site: 'main', destination: 'archive', dataTypes: ['system-information', 'session-data'] },
    ],
  });
  const runner = () =>
    new ScheduleRunner(
      db,
      new DestinationLoader({
        db,
        logger: log.logger,
        catalog: new PluginCatalog({ bundledDirs: BUNDLED, pluginsDir: join(home, 'plugins'), hostVersion: '0.1.0' }),
        dataDir: join(home, 'data'),
        hostVersion: '0.1.0',
      }),
      log.logger,
      engine,
      { retry: FAST_RETRY },
    );
  const r = {
    sim: s,
    db,
    runner: runner(),
    otherRunner: runner,
    files,
    sqlFile,
    home,
    log,
  };
  open.push(r);
  return r;
}

/** An in-process destination defined by the test (a probe, not a plugin), for the engine to deliver to. */
function probe(operations: readonly string[], handlers: Record<string, (item: never) => Promise<unknown>>) {
  const instance = {
    check: () => Promise.resolve({ ok: true, checks: [] }),
    close: () => Promise.resolve(),
    handlers,
  };
  return { name: 'probe', plugin: 'probe (in this test)', operations, instance } as never;
}

const sqlSessions = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare('SELECT lsid FROM session ORDER BY lsid')
      .all()
      .map((r) => (r as { lsid: string }).lsid);
  } finally {
    db.close();
  }
};
const xmlFiles = async (dir: string) =>
  (await readdir(dir)).filter((f) => f.endsWith('.xml') && !f.includes('presentation')).sort();

describe('transfer engine', () => {
  it('moves every data type into files and SQLite, then a second run finds nothing new and duplicates nothing', async () => {
    const r = await rig({ sessions: 30 }, { overlapSeconds: 30 * 86400, settleSeconds: 0 });
    const closed = r.sim.closedSessions();
    const first = await r.runner.run('nightly');
    expect(first.error).toBeUndefined();
    expect(first.outcome).toBe('succeeded');
    expect(first.pluginRestarts).toEqual({});
    const [toFiles, toSql] = first.transfers;
    expect(toFiles!.byType['session-data']).toBe(closed.length);
    expect(toFiles!.byType['session-recording']).toBe(closed.filter((s) => s.hasRecording).length);
    expect(toFiles!.byType['command-shell-recording']).toBe(closed.reduce((n, s) => n + s.shellInstances, 0));
    expect(toFiles!.byType['show-my-screen-recording']).toBe(closed.reduce((n, s) => n + s.smsInstances, 0));
    expect(toFiles!.byType['presentation-data']).toBeGreaterThan(0);
    expect(toFiles!.byType['site-backup']).toBe(1);
    expect(toSql!.byType['session-data']).toBe(closed.length);
    expect(toSql!.byType['system-information']).toBe(closed.length);
    const names = await readdir(r.files);
    expect(names.filter((n) => n.endsWith('.nsb'))).toHaveLength(1);
    expect(sqlSessions(r.sqlFile)).toEqual(closed.map((s) => s.lsid).sort());
    const before = { files: names.length, xml: (await xmlFiles(r.files)).length };

    const second = await r.runner.run('nightly');
    expect(second.outcome).toBe('succeeded');
    expect(second.transfers[0]!.delivered).toBe(1); // only the per-run backup
    expect(second.transfers[1]!.delivered).toBe(0);
    expect(second.transfers[0]!.skipped).toBeGreaterThan(0);
    expect((await xmlFiles(r.files)).length).toBe(before.xml);
    // A new backup file, unless it has the same name (same time) and bytes as the first: then it is not stored twice.
    const after = await readdir(r.files);
    expect(after.length - before.files).toBeLessThanOrEqual(1);
    expect(after.filter((n) => /\.\d+\.(xml|flv|nsb)$/.test(n))).toEqual([]);
    expect(sqlSessions(r.sqlFile)).toHaveLength(closed.length);
    expect((await r.db.runs('nightly')).map((x) => x.outcome)).toEqual(['succeeded', 'succeeded']);
    // Secrets are sealed at rest in the settings database.
    const raw = new Database(join(r.home, 'settings.db'), { readonly: true });
    const dump =
      JSON.stringify(raw.prepare('SELECT * FROM site').all()) +
      JSON.stringify(raw.prepare('SELECT * FROM destination').all());
    raw.close();
    expect(dump).not.toContain(r.sim.clientSecret);
    expect(dump).not.toContain(r.sqlFile);
  });

  it('two schedules sharing a site → destination pair, run at once, move it one after the other: each item delivered once, no race in the destination', async () => {
    // Each report takes a second to make: both runs hold their windows before either delivers anything.
    const r = await rig({ sessions: 60 }, { overlapSeconds: 30 * 86400, settleSeconds: 0 });
    r.sim.reportSeconds = 1;
    const closed = r.sim.closedSessions();
    await r.db.putSchedule({
      name: 'hourly',
      period: '1h',
      enabled: true,
      transfers: [
        { site: 'main', destination: 'archive', dataTypes: ['session-data'] },
        { site: 'main', destination: 'files', dataTypes: ['session-data'] },
      ],
    });
    const [a, b] = await Promise.all([r.runner.run('nightly'), r.otherRunner().run('hourly')]);
    expect([a.outcome, b.outcome]).toEqual(['succeeded', 'succeeded']);
    const sum = (op: Operation, dest: string) =>
      [...a.transfers, ...b.transfers]
        .filter((t) => t.transfer === transferId('main', dest))
        .reduce((n, t) => n + (t.byType[op] ?? 0), 0);
    // Without the pair's lease both runs pulled the same window and delivered it twice (and the SQL plugin's replace
    // raced the other run's system information).
    expect(sum('session-data', 'archive')).toBe(closed.length);
    expect(sum('session-data', 'files')).toBe(closed.length);
    expect(sum('system-information', 'archive')).toBe(closed.length);
    expect(sqlSessions(r.sqlFile)).toEqual(closed.map((s) => s.lsid).sort());
    expect((await xmlFiles(r.files)).length).toBe(closed.length);
    const waits = r.log.lines.filter((l) => String(l.msg).startsWith('another run is moving this site'));
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(String(waits[0]!.heldBy)).toMatch(/ run \d+ of schedule "(nightly|hourly)", transfer [12]$/);
    expect(await r.db.leases()).toEqual([]); // all released
  });

  it('a schedule stored with two transfers of one pair runs them one after the other: nothing delivered twice', async () => {
    const r = await rig({ sessions: 20 }, { overlapSeconds: 30 * 86400, settleSeconds: 0 });
    const closed = r.sim.closedSessions();
    // Refused by `ic schedule add` now (SettingsValidator); one stored by an older version still runs safely.
    await r.db.putSchedule({
      name: 'twice',
      period: '1h',
      enabled: true,
      transfers: [
        { site: 'main', destination: 'archive', dataTypes: ['session-data'] },
        { site: 'main', destination: 'archive', dataTypes: ['session-data', 'system-information'] },
      ],
    });
    const run = await r.runner.run('twice');
    expect(run.outcome).toBe('succeeded');
    expect(run.transfers.reduce((n, t) => n + (t.byType['session-data'] ?? 0), 0)).toBe(closed.length);
    expect(run.transfers.reduce((n, t) => n + t.skipped, 0)).toBe(closed.length); // the second found them delivered
  });

  it('a transfer waiting for its pair when the run is stopped does not start: retryable, its cursors stay, the lease left to its holder', async () => {
    const r = await rig({ sessions: 10 });
    // Another host's run holds main->files (a settings database shared by two hosts).
    expect(await r.db.tryLease(`transfer:${transferId('main', 'files')}`, 'elsewhere:1 run 9', 120)).toBe(true);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const run = await r.runner.run('nightly', stop.signal);
    expect(run.outcome).toBe('stopped');
    const files = run.transfers.find((t) => t.transfer === transferId('main', 'files'))!;
    expect(files).toMatchObject({ delivered: 0, retryable: 1, cursorsMoved: [] });
    expect(files.errors[0]).toMatch(
      /^IC_ERR_RUN_STOPPED: main->files did not start: stopped while it waited for another run of its pair$/,
    );
    expect(await r.db.cursor(transferId('main', 'files'), 'session-data')).toBeUndefined();
    expect(r.sim.requests.filter((q) => q.path === API.backupPath)).toEqual([]);
    expect((await r.db.leases()).map((l) => l.holder)).toEqual(['elsewhere:1 run 9']);
  });

  it('stopped mid-run: what was handed over finishes and is acknowledged, nothing new starts; the run is "stopped", said in warnings, not mailed errors; the next run lands the rest once', async () => {
    const r = await rig({ sessions: 60 });
    const closed = r.sim.closedSessions();
    const stop = new AbortController();
    // Stopped at the 10th acknowledgement: dozens of sessions are in the plugins then, being written or waiting for
    // their batch (SQL) — before, the stop cancelled them there (retryable "aborted" failures, logged one by one).
    let acks = 0;
    const run = await r.runner.run('nightly', stop.signal, () => void (++acks === 10 && stop.abort()));
    expect(run.outcome).toBe('stopped');
    expect(run.error).toMatch(/^IC_ERR_RUN_STOPPED: /);
    for (const t of run.transfers) {
      expect(t.errors.length).toBeGreaterThan(0);
      for (const e of t.errors) expect(e).toMatch(/^IC_ERR_RUN_STOPPED: /);
      expect(t.retryable).toBe(t.errors.length);
      expect(t.cursorsMoved).toEqual([]);
    }
    const files = run.transfers.find((t) => t.transfer === transferId('main', 'files'))!;
    expect(files.delivered + run.transfers[1]!.delivered).toBeGreaterThan(10); // what was in hand landed too
    // Nothing new was asked of the appliance after the stop: not the presentations, not the backup.
    const asked = (q: (typeof r.sim.requests)[number]) =>
      q.path === API.backupPath || q.params[API.params.report] === API.reports.presentationSession;
    expect(r.sim.requests.filter(asked)).toEqual([]);
    expect(r.log.lines.filter((l) => Number(l.level) >= 50)).toEqual([]); // an error line is mailed
    expect(r.log.lines.some((l) => /^stopped before the window was complete/.test(String(l.msg)))).toBe(true);

    const second = await r.runner.run('nightly');
    expect(second.outcome).toBe('succeeded');
    const names = await readdir(r.files);
    expect(names.filter((n) => n.endsWith('.xml') && n.includes('-support-'))).toHaveLength(closed.length);
    expect(names.filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]); // nothing twice
    const db = new Database(r.sqlFile, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM session').get()).toEqual({ n: closed.length });
    db.close();
  });

  it('a recording the appliance never serves holds its cursor back until it has failed in 3 runs over giveUpHours; then it is a failed item and the cursor moves on', async () => {
    const r = await rig({ sessions: 20 }, { overlapSeconds: 3600, settleSeconds: 0 });
    await r.db.putSchedule({
      name: 'rec',
      period: '1h',
      enabled: true,
      transfers: [{ site: 'main', destination: 'files', dataTypes: ['session-data', 'session-recording'] }],
    });
    const closed = r.sim.closedSessions();
    const bad = closed.find((s) => s.hasRecording)!;
    r.sim.brokenRecordings.add(bad.lsid); // HTTP 500 every time
    const id = transferId('main', 'files');
    const item = `session-recording|${r.sim.address.host}|${bad.lsid}`;
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await r.runner.run('rec'));
    // Three runs within the hour: retried each time, the cursor kept, nothing given up yet.
    for (const run of runs) {
      expect(run.transfers[0]).toMatchObject({ failed: 0, retryable: 1, cursorsMoved: ['session-data'] });
      expect(run.transfers[0]!.errors[0]).toMatch(/^IC_ERR_SITE_UNAVAILABLE: .*HTTP 500$/);
    }
    expect(await r.db.cursor(id, 'session-recording')).toBeUndefined();
    expect(await r.db.failedItems({ destination: 'files' })).toEqual([]);
    // A day passes (the first failure, as the settings database has it, is 25 hours old).
    const settings = new Database(join(r.home, 'settings.db'));
    settings
      .prepare('UPDATE retrying SET first_at = ? WHERE item = ?')
      .run(new Date(Date.now() - 25 * 3_600_000).toISOString(), item);
    settings.close();
    const fourth = await r.runner.run('rec');
    expect(fourth.transfers[0]).toMatchObject({ failed: 1, retryable: 0 });
    expect(fourth.transfers[0]!.cursorsMoved).toEqual(['session-data', 'session-recording']);
    expect(fourth.transfers[0]!.errors[0]).toMatch(
      /HTTP 500 \(failed in 4 runs since \S+: given up after 24 h \(setting giveUpHours\), so its cursor can move on\)$/,
    );
    const [failed, ...more] = await r.db.failedItems({ destination: 'files' });
    expect(more).toEqual([]);
    expect(failed).toMatchObject({ item, code: 'IC_ERR_SITE_UNAVAILABLE' });
    const given = r.log.lines.filter(
      (l) => l.msg === 'delivery failed for good; recorded as a failed item (ic failed list), the others go on',
    );
    expect(given).toHaveLength(1);
    expect(given[0]!.level).toBe(50); // an error: mailed
    expect((await r.runner.run('rec')).outcome).toBe('succeeded'); // the next run is clean
    // Every other recording landed once; the broken one is the failed item.
    const flv = (await readdir(r.files)).filter((f) => f.endsWith('.flv'));
    expect(flv).toHaveLength(closed.filter((s) => s.hasRecording).length - 1);
  });

  it('an item refused retryably by its destination is given up on the same way; a plugin crash not pinned on one item (no inFlight of 1) never counts', async () => {
    const r = await rig({ sessions: 6 }, { overlapSeconds: 3600, settleSeconds: 0 });
    const lsids = r.sim.closedSessions().map((s) => s.lsid);
    const [poison, crashed] = lsids;
    const destination = probe(['session-data'], {
      'session-data': (item: SessionDataItem) =>
        item.lsid === poison
          ? Promise.reject(new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', 'deadlock', { retryable: true }))
          : item.lsid === crashed
            ? Promise.reject(new PluginError('IC_ERR_PLUGIN_CRASHED', 'the worker exited', { retryable: true }))
            : Promise.resolve({ status: 'written' as const }),
    });
    const site = await SiteClient.create({ site: await r.db.site('main'), logger: r.log.logger, retry: FAST_RETRY });
    const run = () =>
      new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes: ['session-data'] },
        { settleSeconds: 0 },
      );
    try {
      for (let i = 0; i < 3; i++) expect(await run()).toMatchObject({ failed: 0, retryable: 2 });
      const settings = new Database(join(r.home, 'settings.db'));
      settings.prepare('UPDATE retrying SET first_at = ?').run(new Date(Date.now() - 25 * 3_600_000).toISOString());
      const counted = settings.prepare('SELECT item FROM retrying').all() as { item: string }[];
      settings.close();
      expect(counted.map((c) => c.item)).toEqual([`session-data|${r.sim.address.host}|${poison}`]);
      const fourth = await run();
      expect(fourth).toMatchObject({ failed: 1, retryable: 1, cursorsMoved: [] }); // the crashed one holds it
      expect((await r.db.failedItems()).map((f) => [f.lsid, f.code])).toEqual([
        [poison, 'IC_ERR_DESTINATION_WRITE_FAILED'],
      ]);
    } finally {
      await site.close();
    }
  });

  it('presentations a crash took down are pulled again by lsid and delivered one at a time, as sessions are', async () => {
    const r = await rig({ sessions: 200 }, { overlapSeconds: 3600, settleSeconds: 0 }); // 20 presentations
    // A stand-in for a plugin in its worker: calls take 10 ms; the third presentation kills it 2 ms after it
    // arrives, failing every call in flight the way the worker host does (details.inFlight).
    const pending = new Set<(err: Error) => void>();
    const landed: string[] = [];
    let calls = 0;
    let poison = '';
    const destination = probe(['presentation-data'], {
      'presentation-data': (item: { lsid: string }) =>
        new Promise((resolve, reject) => {
          if (++calls === 3) poison = item.lsid;
          const fail = (err: Error) => reject(err);
          pending.add(fail);
          if (item.lsid === poison)
            setTimeout(() => {
              const err = new PluginError('IC_ERR_PLUGIN_CRASHED', `the probe crashed on ${poison}`, {
                retryable: true,
                details: { inFlight: pending.size },
              });
              for (const f of pending) f(err);
              pending.clear();
            }, 2);
          else
            setTimeout(() => {
              if (!pending.delete(fail)) return; // crashed meanwhile
              landed.push(item.lsid);
              resolve({ status: 'written' });
            }, 10);
        }),
    });
    const site = await SiteClient.create({ site: await r.db.site('main'), logger: r.log.logger, retry: FAST_RETRY });
    try {
      const outcome = await new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes: ['presentation-data'] },
        { settleSeconds: 0 },
      );
      const isolating = r.log.lines.find((l) =>
        /^the plugin crashed with \d+ presentations in flight/.test(String(l.msg)),
      );
      expect(isolating?.presentations).toBeGreaterThan(1);
      expect(outcome).toMatchObject({ delivered: 19, failed: 0, retryable: 1, cursorsMoved: [] });
      expect(outcome.errors).toEqual([`IC_ERR_PLUGIN_CRASHED: the probe crashed on ${poison} (on this item alone)`]);
      expect(landed).toHaveLength(19);
      expect(new Set(landed).size).toBe(19);
      expect(landed).not.toContain(poison);
      // The report asked again for just the sessions the crash took down.
      const again = r.sim.requests.filter((q) => q.params.lsids !== undefined);
      expect(again).toHaveLength(1);
      expect(again[0]!.params.lsids!.split(',')).toContain(poison);
      expect((await r.db.retryingItems()).map((i) => i.item)).toEqual([
        `presentation-data|${r.sim.address.host}|${poison}`,
      ]);
    } finally {
      await site.close();
    }
  });

  it('giveUpHours 0 never gives up, nor counts failures', async () => {
    const r = await rig({ sessions: 10 }, { overlapSeconds: 3600, settleSeconds: 0, giveUpHours: 0 });
    const bad = r.sim.closedSessions().find((s) => s.hasRecording)!;
    r.sim.brokenRecordings.add(bad.lsid);
    for (let i = 0; i < 3; i++) await r.runner.run('nightly');
    const settings = new Database(join(r.home, 'settings.db'), { readonly: true });
    const rows = settings.prepare('SELECT COUNT(*) AS n FROM retrying').get() as { n: number };
    settings.close();
    expect(rows.n).toBe(0); // not even counted
    expect(await r.db.failedItems({ destination: 'files' })).toEqual([]);
  });

  it('keeps many sessions in flight but downloads at most `downloads` recordings at a time', async () => {
    const r = await rig({ sessions: 40 });
    const settings = { ...(await r.db.site('main')), rateLimitPerSecond: 1000 };
    const site = await SiteClient.create({ site: settings, logger: r.log.logger, retry: FAST_RETRY });
    const now = { data: 0, streams: 0 };
    const most = { data: 0, streams: 0 };
    const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const enter = (k: 'data' | 'streams') => (most[k] = Math.max(most[k], ++now[k]));
    const recording = async (item: { stream: AsyncIterable<Buffer> }) => {
      enter('streams');
      let bytes = 0;
      for await (const chunk of item.stream) bytes += chunk.length;
      await hold(50);
      now.streams--;
      return { status: 'written' as const, bytes };
    };
    const operations = ['session-data', 'session-recording', 'command-shell-recording'] as const;
    const destination = probe(operations, {
      'session-data': async () => {
        enter('data');
        await hold(20);
        now.data--;
        return { status: 'written' as const };
      },
      'session-recording': recording,
      'command-shell-recording': recording,
    });
    try {
      const out = await new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes: operations },
        { settleSeconds: 0, downloads: 2 },
      );
      const closed = r.sim.closedSessions();
      expect(out.byType['session-data']).toBe(closed.length);
      expect(out.byType['session-recording']).toBe(closed.filter((x) => x.hasRecording).length);
      expect(out.byType['command-shell-recording']).toBe(closed.reduce((n, x) => n + x.shellInstances, 0));
      expect(most.streams).toBe(2);
      expect(most.data).toBeGreaterThan(10);
    } finally {
      await site.close();
    }
  });

  it('lets go of each session once its data is handed over; recordings still get their facts', async () => {
    const r = await rig({ sessions: 30 });
    const settings = { ...(await r.db.site('main')), rateLimitPerSecond: 1000 };
    const site = await SiteClient.create({ site: settings, logger: r.log.logger, retry: FAST_RETRY });
    const refs: WeakRef<object>[] = [];
    const held: (() => void)[] = [];
    const metas: RecordingMeta[] = [];
    const operations = ['session-data', 'session-recording'] as const;
    const destination = probe(operations, {
      // Keeps only a weak reference to the session, and answers when the test says so (the first at once: the
      // engine hands over the others after the first answer).
      'session-data': (item: SessionDataItem) => {
        if (!refs.length) {
          refs.push(new WeakRef({}));
          return Promise.resolve({ status: 'written' as const });
        }
        refs.push(new WeakRef(item.session));
        return new Promise((resolve) => held.push(() => resolve({ status: 'written' as const })));
      },
      'session-recording': async (item: RecordingItem) => {
        metas.push(item.meta);
        for await (const chunk of item.stream) void chunk;
        return { status: 'written' as const };
      },
    });
    try {
      const run = new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes: operations },
        { settleSeconds: 0 },
      );
      const closed = r.sim.closedSessions();
      while (held.length < closed.length - 1) await new Promise((w) => setTimeout(w, 10));
      await new Promise((w) => setTimeout(w, 0));
      collectGarbage();
      // Every session is waiting for its answer; none is kept alive by the engine (the report loop's last item
      // may still sit in a register).
      expect(refs.filter((x) => x.deref() !== undefined).length).toBeLessThanOrEqual(1);
      for (const answer of held) answer();
      const out = await run;
      expect(out.byType['session-data']).toBe(closed.length);
      const withRecording = closed.filter((x) => x.hasRecording);
      expect(metas).toHaveLength(withRecording.length);
      for (const m of metas) {
        const sim = closed.find((x) => x.lsid === m.lsid)!;
        expect(m).toMatchObject({ siteHost: settings.host, lseq: sim.lseq, externalKey: sim.externalKey || undefined });
        expect(m.sessionType).toBeTruthy();
      }
    } finally {
      await site.close();
    }
  });

  it('hands a destination that takes the model as text (an isolated one) the text made at parse time, once per session', async () => {
    const r = await rig({ sessions: 12 });
    const site = await SiteClient.create({ site: await r.db.site('main'), logger: r.log.logger, retry: FAST_RETRY });
    const seen: { op: string; lsid: string; text: unknown; model: string }[] = [];
    const record = (item: SessionDataItem | PresentationDataItem) => {
      const text = (item as typeof item & { [MODEL_JSON]?: unknown })[MODEL_JSON];
      const model = JSON.stringify('session' in item ? item.session : item.presentation);
      seen.push({ op: item.operation, lsid: item.lsid, text, model });
      return Promise.resolve({ status: 'written' as const });
    };
    const operations = ['session-data', 'system-information', 'presentation-data'] as const;
    const handlers = { 'session-data': record, 'system-information': record, 'presentation-data': record };
    try {
      const engine = new TransferEngine(r.db, r.log.logger);
      await engine.run(
        {
          siteName: 'main',
          site,
          destination: { ...(probe(operations, handlers) as OpenDestination), modelAsText: true },
          dataTypes: [...operations],
        },
        { settleSeconds: 0 },
      );
      const closed = r.sim.closedSessions().length;
      const presentations = seen.filter((x) => x.op === 'presentation-data').length;
      expect(presentations).toBeGreaterThan(0);
      expect(seen).toHaveLength(2 * closed + presentations);
      for (const s of seen) expect(s.text).toBe(s.model); // every data type: exactly the model's text
      // Without modelAsText (an in-process destination) there is none: the plugin's own modelJson makes it if asked.
      seen.length = 0;
      await engine.run(
        {
          siteName: 'main',
          site,
          destination: { ...(probe(operations, handlers) as OpenDestination), name: 'other' },
          dataTypes: [...operations],
        },
        { settleSeconds: 0 },
      );
      expect(seen).toHaveLength(2 * closed + presentations);
      expect(seen.every((s) => s.text === undefined)).toBe(true);
    } finally {
      await site.close();
    }
  });

  it('keeps no text of the report alive while sessions wait for their answers', async () => {
    // Each session in flight keeps its lsid (ledger keys, logs) and its recordings' facts. Strings cut from the
    // report are slices of the report's text in V8: one kept lsid used to keep its whole chunk of the report alive
    // (~10 KB per session in flight, all of it promoted to the old generation). Measured as the heap (after a
    // forced GC) while every session waits, against the heap after the run.
    const r = await rig({ sessions: 300, eventsPerSession: 80, spacing: 60 });
    const settings = { ...(await r.db.site('main')), rateLimitPerSecond: 1000 };
    const site = await SiteClient.create({ site: settings, logger: r.log.logger, retry: FAST_RETRY });
    const held: (() => void)[] = [];
    const operations = ['session-data', 'session-recording'] as const;
    let first = true; // answered at once: the engine hands over the others after the first answer
    const destination = probe(operations, {
      'session-data': () =>
        first
          ? ((first = false), Promise.resolve({ status: 'written' as const }))
          : new Promise((resolve) => held.push(() => resolve({ status: 'written' as const }))),
      'session-recording': async (item: RecordingItem) => {
        for await (const chunk of item.stream) void chunk;
        return { status: 'written' as const };
      },
    });
    const heap = async () => {
      await new Promise((w) => setTimeout(w, 0));
      collectGarbage();
      return process.memoryUsage().heapUsed;
    };
    try {
      const run = new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes: operations },
        { settleSeconds: 0 },
      );
      const closed = r.sim.closedSessions();
      expect(closed.length).toBeGreaterThan(250);
      while (held.length < closed.length - 1) await new Promise((w) => setTimeout(w, 10));
      const waiting = await heap();
      for (const answer of held) answer();
      const out = await run;
      expect(out.byType['session-data']).toBe(closed.length);
      // Against the heap after the run (same code, caches and simulator): what the waiting sessions held.
      const perSession = (waiting - (await heap())) / closed.length;
      // Measured: ~15 KB per session when the lsid was a slice of the report (each pinned its chunk), ~0 now.
      expect(perSession).toBeLessThan(6 * 1024);
    } finally {
      await site.close();
    }
  });

  it('lets the event loop turn while it reads a report that is already buffered', async () => {
    // A report whose bytes are all buffered is read in microtasks only. Without turns, plugin messages wait in their
    // outbox and ledger lookups in their batch until the reading stops, and every session read meanwhile outlives
    // young-generation collections. The source here costs 0.5 ms per session and never waits for I/O.
    const r = await rig({ sessions: 1 });
    const site = await SiteClient.create({ site: await r.db.site('main'), logger: r.log.logger, retry: FAST_RETRY });
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    // eslint-disable-next-line @typescript-eslint/require-await -- it never waits: a report already buffered
    async function* buffered() {
      for (let i = 0; i < 400; i++) {
        busy(0.5);
        const lsid = `buffered-${i}`;
        yield {
          ok: true as const,
          lsid,
          model: sampleSession({ lsid }),
          xml: sampleSessionXml(sampleSession({ lsid })),
        };
      }
    }
    let turns = 0;
    let ticking = true;
    const tick = () => {
      if (!ticking) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const destination = probe(['session-data'], {
      'session-data': () => Promise.resolve({ status: 'written' as const }),
    });
    try {
      const out = await new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes: ['session-data'] },
        { settleSeconds: 0, source: buffered() },
      );
      ticking = false;
      expect(out.delivered).toBe(400);
      // ~200 ms of reading in turns of at most ~5 ms: about 40 turns; 2–3 (after the reading) without them.
      expect(turns).toBeGreaterThan(10);
    } finally {
      ticking = false;
      await site.close();
    }
  });

  it('picks up sessions in progress when they close, on the appliance clock, even with the host clock far ahead', async () => {
    const firstStart = Date.UTC(2024, 11, 1) / 1000;
    // Appliance time: only part of the population has closed. The host clock (2026) is years ahead of it.
    const r = await rig({ sessions: 20, firstStart, spacing: 600, now: firstStart + 10 * 600 });
    const closedAtFirst = r.sim.closedSessions().length;
    expect(closedAtFirst).toBeLessThan(20);
    const first = await r.runner.run('nightly');
    expect(first.outcome).toBe('succeeded');
    expect(sqlSessions(r.sqlFile)).toHaveLength(closedAtFirst);
    const cursor = (await r.db.cursor(transferId('main', 'archive'), 'session-data'))!;
    expect(cursor).toBeLessThanOrEqual(r.sim.now);
    expect(cursor).toBeGreaterThan(r.sim.now - 60);
    r.sim.now = firstStart + 20 * 600 + 7200; // everything has closed now
    await r.runner.run('nightly');
    expect(sqlSessions(r.sqlFile)).toHaveLength(20);
    expect((await xmlFiles(r.files)).length).toBe(20);
  });

  it('a report the appliance takes long to make ends the window when it was asked for: a session that ended meanwhile is not passed by, even with no overlap', async () => {
    const r = await rig({ sessions: 20 }, { overlapSeconds: 0, settleSeconds: 0 });
    // Asked a second before one session ends; the report takes 2 s to make, so it has ended when the answer comes
    // (its Date header) but is not in it.
    const later = r.sim.closedSessions().sort((a, b) => a.end - b.end)[10]!;
    r.sim.now = later.end - 1;
    r.sim.reportSeconds = 2;
    expect((await r.runner.run('nightly')).outcome).toBe('succeeded');
    const first = sqlSessions(r.sqlFile);
    expect(first).not.toContain(later.lsid);
    expect(r.sim.closedSessions().map((x) => x.lsid)).toContain(later.lsid);
    expect(await r.db.cursor(transferId('main', 'archive'), 'session-data')).toBeLessThan(later.end);
    r.sim.reportSeconds = 0;
    r.sim.now = later.end + 86_400; // everything has closed
    expect((await r.runner.run('nightly')).outcome).toBe('succeeded');
    expect(sqlSessions(r.sqlFile)).toHaveLength(20);
    expect((await xmlFiles(r.files)).length).toBe(20);
  });

  it('an unreachable appliance fails the run, keeps every cursor, and the next run catches up', async () => {
    const r = await rig({ sessions: 10 });
    const port = Number(new URL(r.sim.address.url).port);
    await r.sim.stop();
    const down = await r.runner.run('nightly');
    expect(down.outcome).toBe('failed');
    expect(down.error).toMatch(/IC_ERR_SITE_UNREACHABLE/);
    // Said once per transfer: its presentations and its backup are not tried against the same unreachable host,
    // and nothing counts as failed for good.
    expect(down.transfers.map((t) => [t.transfer, t.haltedBy, t.failed, t.errors.length])).toEqual([
      ['main->files', 'IC_ERR_SITE_UNREACHABLE', 0, 1],
      ['main->archive', 'IC_ERR_SITE_UNREACHABLE', 0, 1],
    ]);
    expect(r.log.lines.filter((l) => Number(l.level) >= 50)).toHaveLength(2);
    expect(await r.db.cursors()).toEqual([]);
    expect(await r.db.deliveredCount()).toBe(0);
    await r.sim.start(port);
    const back = await r.runner.run('nightly');
    expect(back.outcome).toBe('succeeded');
    expect(sqlSessions(r.sqlFile)).toHaveLength(r.sim.closedSessions().length);
    expect((await r.db.cursors()).length).toBeGreaterThan(0);
  });

  it('a client secret regenerated on the appliance fails the run once per transfer, takes no backup, and passes nothing by', async () => {
    const r = await rig({ sessions: 10 });
    const secret = r.sim.rotateSecret();
    const refused = await r.runner.run('nightly');
    expect(refused.outcome).toBe('failed');
    expect(refused.error).toMatch(/IC_ERR_SITE_AUTH_FAILED: .*update the site's credentials/);
    for (const t of refused.transfers) expect(t).toMatchObject({ haltedBy: 'IC_ERR_SITE_AUTH_FAILED', failed: 0 });
    const errors = r.log.lines.filter((l) => Number(l.level) >= 50).map((l) => String(l.msg));
    expect(errors).toHaveLength(2);
    expect(errors.every((m) => m.startsWith('pulling the report'))).toBe(true);
    expect(r.sim.requests.filter((q) => q.path === API.backupPath)).toEqual([]);
    expect(await r.db.failedItems()).toEqual([]);
    await r.db.putSite({ ...(await r.db.site('main')), clientSecret: secret });
    expect((await r.runner.run('nightly')).outcome).toBe('succeeded');
    expect(sqlSessions(r.sqlFile)).toHaveLength(r.sim.closedSessions().length);
  });

  it.each([
    ['goes away', 'IC_ERR_SITE_UNREACHABLE'],
    ['takes the reporting permission from the API account', 'IC_ERR_SITE_FORBIDDEN'],
  ] as const)(
    'an appliance that %s mid-run stops each transfer at the first failed download: one error, no download of every other recording, the cursor kept',
    async (what, code) => {
      // The default sessions in flight: most recordings are then waiting for a download slot when it happens.
      const r = await rig({ sessions: 120 });
      const port = Number(new URL(r.sim.address.url).port);
      const fail = () =>
        code === 'IC_ERR_SITE_UNREACHABLE' ? void r.sim.stop() : (r.sim.permissions.reporting = false);
      let delivered = 0;
      const first = await r.runner.run('nightly', undefined, (transfer, op) => {
        if (transfer === 'main->files' && op !== 'session-data' && ++delivered === 10) fail();
      });
      expect(first.outcome, what).not.toBe('succeeded');
      const files = first.transfers.find((t) => t.transfer === 'main->files')!;
      expect(files.haltedBy).toBe(code);
      expect(files.failed).toBe(0); // nothing passed by as failed for good
      const recordings = r.sim
        .closedSessions()
        .reduce((n, x) => n + Number(x.hasRecording) + x.shellInstances + x.smsInstances, 0);
      expect(files.retryable).toBeLessThan(recordings / 4); // the downloads on their way, not every recording left
      const messages = r.log.lines.map((l) => String(l.msg));
      expect(messages.filter((m) => m.startsWith('the appliance cannot be used now'))).toHaveLength(1);
      expect(messages.filter((m) => m.startsWith('delivery failed')).length).toBeLessThan(recordings / 4);
      if (code === 'IC_ERR_SITE_UNREACHABLE') await r.sim.start(port);
      else r.sim.permissions.reporting = true;
      expect((await r.runner.run('nightly')).outcome).toBe('succeeded');
      const closed = r.sim.closedSessions();
      expect((await xmlFiles(r.files)).length).toBe(closed.length);
      const flv = (await readdir(r.files)).filter((n) => n.endsWith('.flv') && !n.includes('presentation'));
      expect(flv.length).toBe(recordings);
      expect((await readdir(r.files)).filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]);
    },
  );

  it('a destination whose configuration is refused at delivery stops its transfer once, keeping the cursor; the other transfer goes on', async () => {
    const r = await rig({ sessions: 30 });
    // The SQL destination pointed at the settings database: the plugin refuses it (IC_ERR_CONFIG_INVALID).
    const settings = `sqlite:${join(r.home, 'settings.db')}`;
    await r.db.putDestination({ name: 'archive', plugin: 'sql', config: { connectionString: settings } }, [
      'connectionString',
    ]);
    const first = await r.runner.run('nightly');
    const archive = first.transfers.find((t) => t.transfer === 'main->archive')!;
    expect(archive).toMatchObject({ haltedBy: 'IC_ERR_CONFIG_INVALID', failed: 0, delivered: 0, cursorsMoved: [] });
    expect(
      r.log.lines.filter((l) => String(l.msg).startsWith('the destination cannot take anything now')),
    ).toHaveLength(1);
    expect(first.transfers.find((t) => t.transfer === 'main->files')!.cursorsMoved.length).toBeGreaterThan(0);
    await r.db.putDestination({ name: 'archive', plugin: 'sql', config: { connectionString: `sqlite:${r.sqlFile}` } }, [
      'connectionString',
    ]);
    expect((await r.runner.run('nightly')).outcome).toBe('succeeded');
    expect(sqlSessions(r.sqlFile)).toEqual(
      r.sim
        .closedSessions()
        .map((x) => x.lsid)
        .sort(),
    );
  });

  it('appliance faults mid-run (5xx, resets, truncated bodies, expiring tokens) are retried: every session lands once', async () => {
    const r = await rig({ sessions: 40, faults: { error5xx: 0.15, reset: 0.1, truncate: 0.1 } });
    r.sim.faults.inject('token-expiry', 1);
    // Retries are bounded: a run may end partly failed (faults are random), the next ones catch up.
    const outcomes = [(await r.runner.run('nightly')).outcome];
    while (outcomes.at(-1) !== 'succeeded' && outcomes.length < 12)
      outcomes.push((await r.runner.run('nightly')).outcome);
    expect(outcomes.at(-1)).toBe('succeeded');
    const closed = r.sim.closedSessions();
    expect(sqlSessions(r.sqlFile)).toEqual(closed.map((s) => s.lsid).sort());
    expect((await xmlFiles(r.files)).length).toBe(closed.length);
    expect((await readdir(r.files)).filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]);
    expect(r.sim.requests.some((q) => q.fault)).toBe(true);
  }, 180_000);
});

/** A fresh PostgreSQL database reached through a proxy that a test can cut and restore. */
async function proxiedPostgres() {
  const { createDatabase, CuttableProxy } = await import('../../plugins/sql/dist/test-helpers.js');
  const db = await createDatabase('postgres');
  const url = new URL(db.connectionString);
  const proxy = await new CuttableProxy({ host: url.hostname, port: Number(url.port) }).start();
  url.port = String(proxy.port);
  return { db, url, proxy };
}

describe('isolated destinations start while the report is requested', () => {
  const UNRULY = join(REPO_ROOT, 'integration-tests/fixtures/unruly-plugin');
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  async function opened(
    behaviour: string,
    sessions = 30,
    more: (r: Rig) => Record<string, unknown> = () => ({}),
    limits: Partial<IsolationOptions> = {},
  ) {
    const r = await rig({ sessions });
    const out = join(r.home, 'unruly.jsonl');
    await r.db.putDestination({ name: 'u', plugin: 'unruly', config: { out, behaviour, ...more(r) } }, []);
    const loader = new DestinationLoader({
      db: r.db,
      logger: r.log.logger,
      catalog: new PluginCatalog({ bundledDirs: [UNRULY], pluginsDir: join(r.home, 'plugins'), hostVersion: '0.1.0' }),
      dataDir: join(r.home, 'data'),
      hostVersion: '0.1.0',
      limits: { backoffMs: 50, maxBackoffMs: 200, ...limits },
    });
    const destination = await loader.open('u');
    const created = existsSync(join(r.home, 'data', 'u', 'created'));
    const site = await SiteClient.create({ site: await r.db.site('main'), logger: r.log.logger });
    closers.push(async () => {
      await destination.instance.close();
      await site.close();
    });
    const run = (dataTypes: Operation[] = ['session-data'], signal?: AbortSignal) =>
      new TransferEngine(r.db, r.log.logger).run(
        { siteName: 'main', site, destination, dataTypes },
        { settleSeconds: 0, signal },
      );
    return { r, out, created, run, loader, destination };
  }

  it('an item that crashes its plugin every time: the calls it took down land in the same run, one at a time; the crash is pinned on it and it is given up on like any item failing on its own', async () => {
    let poison = '';
    const { r, out, run, destination } = await opened('none', 30, (rig) => {
      poison = rig.sim.closedSessions()[12]!.lsid;
      return { crashOn: [poison], slowMs: 20 }; // slow: other calls are in the plugin when it crashes
    });
    const item = `session-data|${r.sim.address.host}|${poison}`;
    const stored = async () =>
      (await readFile(out, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { lsid: string }).lsid);
    const first = await run();
    // Without the second pass the sessions in the plugin with it failed too, and waited for the next run.
    const isolating = r.log.lines.find((l) => /^the plugin crashed with \d+ sessions in flight/.test(String(l.msg)));
    expect(isolating?.sessions).toBeGreaterThan(1);
    expect(first).toMatchObject({ delivered: 29, failed: 0, retryable: 1, cursorsMoved: [] });
    expect(first.errors).toEqual([
      expect.stringMatching(/^IC_ERR_PLUGIN_CRASHED: .*unruly: crashes on \S+ \(on this item alone\)$/),
    ]);
    // Replaced twice: once among the others, once on its own.
    expect(destination.restarts?.()).toBe(2);
    const landed = await stored();
    expect(new Set(landed).size).toBe(29);
    expect(landed).toHaveLength(29);
    expect(landed).not.toContain(poison);
    expect((await r.db.retryingItems()).map((i) => [i.item, i.runs, i.code])).toEqual([
      [item, 1, 'IC_ERR_PLUGIN_CRASHED'],
    ]);
    expect((await r.db.retryingItems())[0]!.message).toMatch(/crashes on \S+ \(on this item alone\)$/);
    // The next runs: the others are in the ledger, so the poison is alone in the plugin from the start.
    for (let i = 0; i < 2; i++)
      expect(await run()).toMatchObject({ delivered: 0, skipped: 29, failed: 0, retryable: 1, cursorsMoved: [] });
    expect((await r.db.retryingItems()).map((i) => [i.item, i.runs])).toEqual([[item, 3]]);
    const settings = new Database(join(r.home, 'settings.db'));
    settings.prepare('UPDATE retrying SET first_at = ?').run(new Date(Date.now() - 25 * 3_600_000).toISOString());
    settings.close();
    const fourth = await run();
    expect(fourth).toMatchObject({ delivered: 0, failed: 1, retryable: 0, cursorsMoved: ['session-data'] });
    expect((await r.db.failedItems()).map((f) => [f.item, f.code])).toEqual([[item, 'IC_ERR_PLUGIN_CRASHED']]);
    expect(await stored()).toHaveLength(29);
  });

  it('an item its plugin spins on for ever: the calls stuck behind it are not counted against their items, they land in the same run; the hang is pinned on it', async () => {
    let poison = '';
    const { r, out, run, destination } = await opened(
      'none',
      30,
      (rig) => {
        poison = rig.sim.closedSessions()[12]!.lsid;
        return { hangOn: [poison], slowMs: 20 };
      },
      { callTimeoutMs: 1000, pingGraceMs: 300 },
    );
    const first = await run();
    const isolating = r.log.lines.find((l) => /^the plugin hung with \d+ sessions in flight/.test(String(l.msg)));
    expect(isolating?.sessions).toBeGreaterThan(1);
    expect(first).toMatchObject({ delivered: 29, failed: 0, retryable: 1, cursorsMoved: [] });
    expect(first.errors).toEqual([
      expect.stringMatching(/^IC_ERR_PLUGIN_TIMEOUT: .*ran 1000 ms without progress.* \(on this item alone\)$/),
    ]);
    const landed = (await readFile(out, 'utf8')).trim().split('\n');
    expect(new Set(landed).size).toBe(29);
    expect(landed.join()).not.toContain(poison);
    // Only the item that hangs is counted towards giving up; the 28 held behind it are not.
    expect((await r.db.retryingItems()).map((i) => [i.lsid, i.code])).toEqual([[poison, 'IC_ERR_PLUGIN_TIMEOUT']]);
    expect(destination.restarts?.()).toBe(2); // hung among the others, then on its own: terminated both times
  });

  it('two sites into one destination: while one delivers the sessions a crash took down one at a time, the other waits, so the crash is pinned on its item', async () => {
    let poison = '';
    const { r, out, loader } = await opened('none', 30, (rig) => {
      poison = rig.sim.closedSessions()[12]!.lsid;
      return { crashOn: [poison], slowMs: 20 };
    });
    // A second appliance (another seed: other lsids) whose sessions keep the plugin busy all the while.
    const other = new ApplianceSimulator({ sessions: 300, seed: 9, recordingBytes: 2048, backupBytes: 4096 });
    const b = await other.start();
    closers.push(() => other.stop());
    await r.db.putSite({
      name: 'second',
      host: b.host,
      clientId: b.clientId,
      clientSecret: b.clientSecret,
      caFile: ApplianceSimulator.caFile,
    });
    await r.db.putSchedule({
      name: 'both',
      period: '1d',
      enabled: true,
      transfers: [
        { site: 'main', destination: 'u', dataTypes: ['session-data'] },
        { site: 'second', destination: 'u', dataTypes: ['session-data'] },
      ],
    });
    const runner = new ScheduleRunner(r.db, loader, r.log.logger, { settleSeconds: 0 }, { retry: FAST_RETRY });
    const run = await runner.run('both');
    const [main, second] = run.transfers;
    // Without the gate, the second site's calls were in the plugin when the poison crashed it on its own: the crash
    // could not be pinned, the second pass stopped, and the item was never counted (nor ever given up on).
    expect(main).toMatchObject({ delivered: 29, retryable: 1, failed: 0 });
    expect(main!.errors).toEqual([expect.stringMatching(/crashes on \S+ \(on this item alone\)$/)]);
    expect((await r.db.retryingItems()).map((i) => [i.lsid, i.code])).toEqual([[poison, 'IC_ERR_PLUGIN_CRASHED']]);
    // The second site's sessions the first crash took down land in the same run, once each.
    const closedB = other.closedSessions().length;
    expect(second!.delivered + second!.skipped).toBe(closedB);
    expect(second).toMatchObject({ failed: 0, retryable: 0 });
    const landed = (await readFile(out, 'utf8')).trim().split('\n');
    expect(landed).toHaveLength(29 + closedB);
    expect(new Set(landed).size).toBe(landed.length);
  });

  it("a schedule run says how many times each destination's plugin worker was replaced (for /metrics)", async () => {
    let poison = '';
    const { r, loader } = await opened('none', 10, (rig) => {
      poison = rig.sim.closedSessions()[4]!.lsid;
      return { crashOn: [poison], slowMs: 20 };
    });
    await r.db.putSchedule({
      name: 'unruly',
      period: '1d',
      enabled: true,
      transfers: [{ site: 'main', destination: 'u', dataTypes: ['session-data'] }],
    });
    const runner = new ScheduleRunner(r.db, loader, r.log.logger, { settleSeconds: 0 }, { retry: FAST_RETRY });
    const run = await runner.run('unruly');
    // Replaced twice: once among the others, once on its own (as in the test above).
    expect(run).toMatchObject({ outcome: 'partly-failed', pluginRestarts: { u: 2 } });
    expect(run.transfers[0]).toMatchObject({ delivered: 9, retryable: 1 });
  });

  it('stopped while the sessions a crash took down are delivered one at a time: the rest is left retryable, the cursor kept, nothing twice; the next run completes', async () => {
    let poison = '';
    const { r, out, run } = await opened('none', 30, (rig) => {
      poison = rig.sim.closedSessions()[12]!.lsid;
      return { crashOn: [poison], slowMs: 100 }; // 100 ms each, one at a time: the second pass takes seconds
    });
    const stop = new AbortController();
    const stopping = (async () => {
      while (!r.log.lines.some((l) => /^the plugin crashed with \d+ sessions in flight/.test(String(l.msg))))
        await new Promise((t) => setTimeout(t, 10));
      await new Promise((t) => setTimeout(t, 250)); // a few delivered alone
      stop.abort();
    })();
    const first = await run(['session-data'], stop.signal);
    await stopping;
    expect(first).toMatchObject({ cursorsMoved: [] });
    expect(first.delivered).toBeLessThan(29);
    expect(first.errors.at(-1)).toMatch(/the run was stopped before the window was complete/);
    expect(await r.db.cursor(transferId('main', 'u'), 'session-data')).toBeUndefined();
    const lines = async () => (await readFile(out, 'utf8')).trim().split('\n');
    const before = await lines();
    expect(new Set(before).size).toBe(before.length);
    // Run again without the poison's crash counting yet: the others land, each once.
    const second = await run();
    expect(second.delivered).toBe(29 - first.delivered);
    const after = await lines();
    expect(after).toHaveLength(29);
    expect(new Set(after).size).toBe(29);
  });

  it('open() does not wait for the plugin to be created; the engine waits before its first delivery', async () => {
    const { r, out, created, run } = await opened('create-slowly');
    expect(created).toBe(false); // open() returned while create() was still running (it takes a second)
    const outcome = await run();
    expect(outcome).toMatchObject({ delivered: 30, failed: 0, retryable: 0, cursorsMoved: ['session-data'] });
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(30);
    expect(existsSync(join(r.home, 'data', 'u', 'created'))).toBe(true);
  });

  it('a plugin that cannot be created fails the pull with its code: nothing delivered, no cursor moved', async () => {
    const { r, out, run } = await opened('create-fails');
    const outcome = await run();
    expect(outcome).toMatchObject({ delivered: 0, failed: 0, retryable: 1, cursorsMoved: [] });
    expect(outcome.errors).toEqual([expect.stringContaining('IC_ERR_PLUGIN_CREATE_FAILED')]);
    expect(outcome.errors[0]).toContain('unruly: create() refuses');
    expect(await r.db.cursor(transferId('main', 'u'), 'session-data')).toBeUndefined();
    expect(existsSync(out)).toBe(false);
    // A second run with the same opened destination meets the same refusal, and delivers nothing either.
    expect((await run()).errors).toEqual([expect.stringContaining('IC_ERR_PLUGIN_CREATE_FAILED')]);
  });

  it('an empty window moves no cursor past a destination that cannot be created', async () => {
    const { r, run } = await opened('create-fails', 0);
    const outcome = await run();
    expect(outcome).toMatchObject({ delivered: 0, retryable: 1, cursorsMoved: [] });
    expect(outcome.errors).toEqual([expect.stringContaining('IC_ERR_PLUGIN_CREATE_FAILED')]);
    expect(await r.db.cursor(transferId('main', 'u'), 'session-data')).toBeUndefined();
  });

  it('a backup is not requested from the appliance for a destination that cannot be created', async () => {
    const { r, run } = await opened('create-fails');
    const outcome = await run(['site-backup']);
    expect(outcome).toMatchObject({ delivered: 0, failed: 0, retryable: 1 });
    expect(outcome.errors).toEqual([expect.stringContaining('IC_ERR_PLUGIN_CREATE_FAILED')]);
    expect(r.sim.requests.filter((q) => q.path === API.backupPath)).toEqual([]);
  });

  it('with a destination that starts, the backup is delivered', async () => {
    const { r, out, run } = await opened('none');
    expect(await run(['site-backup'])).toMatchObject({ delivered: 1, failed: 0, retryable: 0 });
    expect(r.sim.requests.filter((q) => q.path === API.backupPath)).toHaveLength(1);
    expect(await readFile(out, 'utf8')).toContain('"bytes":4096');
  });
});

describe.runIf(isRoot)('a file-system destination that cannot take anything (real tmpfs)', () => {
  async function edgeRig(dir: string) {
    const r = await rig({ sessions: 30 });
    await r.db.putDestination({ name: 'edge', plugin: 'file-system', config: { destinationDirectory: dir } }, []);
    await r.db.putSchedule({
      name: 'edge',
      period: '1h',
      enabled: true,
      transfers: [{ site: 'main', destination: 'edge', dataTypes: ['session-data', 'session-recording'] }],
    });
    const said = (start: string) => r.log.lines.filter((l) => String(l.msg).startsWith(start)).length;
    const recordingRequests = () =>
      r.sim.requests.filter((q) => q.report === API.reports.sessionRecording || q.path.includes('Recording')).length;
    return { r, said, recordingRequests };
  }

  /** After the fault is gone: the next run delivers every session and recording once, and the one after nothing. */
  async function catchesUp(r: Rig, dir: string) {
    const run = await r.runner.run('edge');
    expect(run.outcome).toBe('succeeded');
    const names = await readdir(dir);
    expect(names.filter((n) => n.endsWith('.xml'))).toHaveLength(30);
    expect(names.filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]); // no numbered second copies
    expect((await r.runner.run('edge')).transfers[0]).toMatchObject({ delivered: 0, failed: 0, retryable: 0 });
  }

  it('a read-only file system stops the transfer at the first refusal: said once as an error, no recording downloaded, the cursor kept, and all delivered once it is writable', async () => {
    const fs = await tmpfs('size=16m,ro');
    try {
      const { r, said, recordingRequests } = await edgeRig(fs.dir);
      const run = await r.runner.run('edge');
      expect(run.outcome).toBe('failed');
      const [t] = run.transfers;
      expect(t).toMatchObject({ delivered: 0, failed: 0, retryable: 1 });
      expect(t!.errors).toEqual([expect.stringMatching(/^IC_ERR_DESTINATION_PERMISSION_DENIED: .*read-only/)]);
      expect(t!.haltedBy).toBe('IC_ERR_DESTINATION_PERMISSION_DENIED');
      expect(said('the destination cannot take anything now')).toBe(1);
      expect(r.log.lines.find((l) => String(l.msg).startsWith('the destination cannot take anything'))?.level).toBe(
        50, // error: mailed
      );
      expect(said('delivery failed')).toBe(0);
      expect(recordingRequests()).toBe(0);
      for (const type of ['session-data', 'session-recording'] as const)
        expect(await r.db.cursor(transferId('main', 'edge'), type)).toBeUndefined();
      expect(await r.db.failures(10)).toEqual([]); // nothing recorded as failed for good
      fs.remount('rw');
      await catchesUp(r, fs.dir);
      expect(recordingRequests()).toBeGreaterThan(0); // the count above counts what it says
    } finally {
      fs.done();
    }
  });

  it('a full disk stops the transfer at the first write that does not fit: said once, the cursor kept, and the rest delivered once there is space', async () => {
    const fs = await tmpfs('size=64k');
    try {
      const { r, said } = await edgeRig(fs.dir);
      const run = await r.runner.run('edge');
      expect(run.outcome).not.toBe('succeeded');
      const [t] = run.transfers;
      expect(t!.errors).toEqual([expect.stringMatching(/^IC_ERR_DESTINATION_FULL: .*is full \(ENOSPC\)/)]);
      expect(t!.haltedBy).toBe('IC_ERR_DESTINATION_FULL');
      expect(said('the destination cannot take anything now')).toBe(1);
      expect(said('delivery failed')).toBe(0);
      expect(t!.delivered).toBeLessThan(30);
      for (const type of ['session-data', 'session-recording'] as const)
        expect(await r.db.cursor(transferId('main', 'edge'), type)).toBeUndefined();
      fs.remount('size=16m');
      await catchesUp(r, fs.dir);
    } finally {
      fs.done();
    }
  });
});

describe('transfer engine into PostgreSQL', () => {
  it('a destination that cannot be reached stops its transfer at the first failure: said once, the rest left for the next run', async () => {
    const r = await rig({ sessions: 60 });
    await r.db.putDestination(
      { name: 'down', plugin: 'sql', config: { connectionString: 'postgres://postgres@127.0.0.1:1/nowhere' } },
      ['connectionString'],
    );
    await r.db.putSchedule({
      name: 'down',
      period: '1h',
      enabled: true,
      transfers: [{ site: 'main', destination: 'down', dataTypes: ['session-data', 'system-information'] }],
    });
    const run = await r.runner.run('down');
    expect(run.outcome).toBe('failed');
    const [t] = run.transfers;
    expect(t!.delivered).toBe(0);
    // The first session goes alone, so its answer is the only attempt: the other 59 (and its system information)
    // are left for the next run.
    expect(t!.retryable).toBe(1);
    expect(t!.errors).toEqual([expect.stringMatching(/^IC_ERR_DESTINATION_UNAVAILABLE: .*cannot be reached/)]);
    expect(t!.haltedBy).toBe('IC_ERR_DESTINATION_UNAVAILABLE');
    const messages = r.log.lines.map((l) => String(l.msg));
    expect(messages.filter((m) => m.startsWith('the destination cannot take anything now'))).toHaveLength(1);
    expect(messages.filter((m) => m.startsWith('delivery failed'))).toEqual([]);
    for (const type of ['session-data', 'system-information'] as const)
      expect(await r.db.cursor(transferId('main', 'down'), type)).toBeUndefined();
  });

  it('lands every session, and a database that goes away mid-run keeps the cursor until the next run completes', async () => {
    const { db: pgDb, url, proxy } = await proxiedPostgres();
    try {
      const r = await rig({ sessions: 60 });
      await r.db.putDestination({ name: 'pg', plugin: 'sql', config: { connectionString: url.href } }, [
        'connectionString',
      ]);
      await r.db.putSchedule({
        name: 'pg',
        period: '1h',
        enabled: true,
        transfers: [{ site: 'main', destination: 'pg', dataTypes: ['session-data', 'system-information'] }],
      });
      proxy.cutAfter(150_000); // the database goes away part-way through the first run
      const first = await r.runner.run('pg');
      expect(first.outcome).not.toBe('succeeded');
      expect(await r.db.cursor(transferId('main', 'pg'), 'session-data')).toBeUndefined();
      await proxy.restore();
      const second = await r.runner.run('pg');
      expect(second.outcome).toBe('succeeded');
      const closed = r.sim.closedSessions();
      const rows = await pgDb.sql('SELECT lsid, COUNT(*) AS n FROM session GROUP BY lsid ORDER BY lsid');
      expect(rows.map((x) => x.lsid)).toEqual(closed.map((s) => s.lsid).sort());
      expect(rows.every((x) => Number(x.n) === 1)).toBe(true);
      expect(await r.db.cursor(transferId('main', 'pg'), 'session-data')).toBeDefined();
    } finally {
      proxy.cut();
      await pgDb.drop();
    }
  });
});

describe('transfer engine with its settings database in PostgreSQL', () => {
  // With 4 sessions in flight the cut lands part-way through the deliveries; with the default (400) every file has
  // landed before the ledger writes are cut, so the next run meets files whose ledger entries were lost.
  it.each([4, 'the default'] as const)(
    'the settings database going away mid-run fails the run without a crash; the next run completes, nothing twice (concurrency %s)',
    async (inFlight) => {
      const concurrency = inFlight === 4 ? 4 : undefined;
      const { db: settingsDb, url, proxy } = await proxiedPostgres();
      try {
        const r = await rig({ sessions: 40 }, { overlapSeconds: 3600, settleSeconds: 0, concurrency }, url.href);
        proxy.cutAfter(40_000); // part-way through the first run's ledger and cursor writes
        const first = await r.runner.run('nightly').then(
          (run) => run.outcome,
          (err: unknown) => (err as Error).message,
        );
        expect(first).not.toBe('succeeded');
        const landedBefore = (await xmlFiles(r.files)).length;
        expect(landedBefore).toBeGreaterThan(0); // it was cut mid-run, not before
        if (concurrency === 4) expect(landedBefore).toBeLessThan(r.sim.closedSessions().length);
        await proxy.restore();
        const second = await r.runner.run('nightly');
        expect(second.outcome).toBe('succeeded');
        const closed = r.sim.closedSessions();
        expect(sqlSessions(r.sqlFile)).toEqual(closed.map((s) => s.lsid).sort());
        expect((await xmlFiles(r.files)).length).toBe(closed.length);
        expect((await readdir(r.files)).filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]);
        expect((await r.db.runs('nightly')).map((x) => x.outcome)).toEqual(['succeeded', 'failed']);
      } finally {
        proxy.cut();
        await settingsDb.drop();
      }
    },
  );

  it('a ledger that cannot be read stops each transfer once with an error, not a warning per session; the next run completes', async () => {
    const { db: settingsDb, url, proxy } = await proxiedPostgres();
    try {
      const r = await rig({ sessions: 60 }, { overlapSeconds: 3600, settleSeconds: 0, concurrency: 4 }, url.href);
      let delivered = 0;
      // The settings database goes away once a few items have landed: every ledger read after that fails.
      const first = await r.runner
        .run('nightly', undefined, () => void (++delivered === 5 && proxy.cut()))
        .then(
          (run) => run.outcome,
          (err: unknown) => (err as Error).message,
        );
      expect(first).not.toBe('succeeded');
      const ledger = r.log.lines.filter((l) =>
        String(l.msg).startsWith('the delivered-items ledger could not be read'),
      );
      expect(ledger.length).toBeGreaterThanOrEqual(1);
      expect(ledger.length).toBeLessThanOrEqual(2); // once per transfer (files, archive), not once per session
      expect(ledger.every((l) => l.level === 50)).toBe(true); // error: mailed
      await proxy.restore();
      expect((await r.runner.run('nightly')).outcome).toBe('succeeded');
      const closed = r.sim.closedSessions();
      expect(sqlSessions(r.sqlFile)).toEqual(closed.map((x) => x.lsid).sort());
      expect((await xmlFiles(r.files)).length).toBe(closed.length);
      expect((await readdir(r.files)).filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]);
    } finally {
      proxy.cut();
      await settingsDb.drop();
    }
  });
});
