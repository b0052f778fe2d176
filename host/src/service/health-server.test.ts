import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretBox, SettingsDb, type ScheduleRun, type TransferOutcome } from '@integration-client/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metricsText, ServiceMetrics } from './health-server.js';

const YEARS_BEHIND = -63_000_000; // the simulator's clock stands in 2024

function run(transfer: string, offset?: number, pluginRestarts: Record<string, number> = {}): ScheduleRun {
  const t: TransferOutcome = {
    transfer,
    delivered: 3,
    skipped: 0,
    deferred: 0,
    bytes: 10,
    failed: 0,
    retryable: 1,
    cursorsMoved: [],
    errors: [],
    byType: {},
    ...(offset !== undefined && { applianceClockOffsetSeconds: offset }),
  };
  return { runId: 1, schedule: 'nightly', outcome: 'partly-failed', transfers: [t], seconds: 1, pluginRestarts };
}

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('/metrics', () => {
  let db: SettingsDb;
  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ic-metrics-'));
    db = await SettingsDb.open(`sqlite:${join(dir, 'settings.db')}`, SecretBox.withKey(Buffer.alloc(32, 1)));
  });
  afterEach(() => db.close());

  it('measures cursor lag on the appliance clock: the site offset from any of its transfers, else when it moved', async () => {
    const now = Math.floor(Date.now() / 1000);
    const applianceNow = now + YEARS_BEHIND;
    await db.setCursor('main->files', 'session-data', applianceNow - 60);
    await db.setCursor('main->arch', 'session-data', applianceNow - 600);
    await db.setCursor('other->arch', 'session-data', applianceNow - 60); // its site has not run in this service
    const m = new ServiceMetrics();
    m.record(run('main->files', YEARS_BEHIND));
    m.record(run('other->arch')); // no answer from the appliance: no offset

    let text = await metricsText(m, db, now);
    expect(value(text, 'ic_cursor_lag_seconds{transfer="main->files",data_type="session-data"}')).toBe(60);
    // main->arch has not run here, but its site has: the same appliance clock
    expect(value(text, 'ic_cursor_lag_seconds{transfer="main->arch",data_type="session-data"}')).toBe(600);
    // other: the cursor moved just now to the appliance's now less the settle time (60 s by default)
    const other = 'ic_cursor_lag_seconds{transfer="other->arch",data_type="session-data"}';
    expect(value(text, other)).toBeGreaterThanOrEqual(59);
    expect(value(text, other)).toBeLessThanOrEqual(62);
    await db.putApplication({ ...(await db.application()), settleSeconds: 300 });
    text = await metricsText(m, db, now + 100);
    expect(value(text, other)).toBeGreaterThanOrEqual(399);
    expect(value(text, other)).toBeLessThanOrEqual(402);

    expect(value(text, 'ic_site_clock_offset_seconds{site="main"}')).toBe(YEARS_BEHIND);
    expect(text).not.toMatch(/ic_site_clock_offset_seconds\{site="other"\}/);
    expect(value(text, 'ic_items_delivered_total{site="main",destination="files"}')).toBe(3);
    expect(value(text, 'ic_item_failures_total{site="other",destination="arch"}')).toBe(1);
    expect(value(text, 'ic_runs_total{schedule="nightly",outcome="partly-failed"}')).toBe(2);
    // Without a live source, nothing under way and no mail waiting; with one, what it says at the scrape.
    expect(value(text, 'ic_runs_in_progress')).toBe(0);
    let live = { mailsWaiting: 0, runsInProgress: 1 };
    const withLive = new ServiceMetrics(() => live);
    expect(value(await metricsText(withLive, db), 'ic_runs_in_progress')).toBe(1);
    live = { mailsWaiting: 3, runsInProgress: 0 };
    text = await metricsText(withLive, db);
    expect(value(text, 'ic_notification_mails_waiting')).toBe(3);
    expect(text).toMatch(/^# TYPE ic_notification_mails_waiting gauge\nic_notification_mails_waiting 3$/m);
  });

  it('counts the open failed items per destination: one per item however often it failed, none once delivered', async () => {
    const m = new ServiceMetrics();
    expect(await metricsText(m, db)).not.toMatch(/^ic_failed_items\{/m);
    await db.recordFailure(1, 'files', 'session-recording|h|a', 'IC_ERR_X', 'x');
    await db.recordFailure(2, 'files', 'session-recording|h|a', 'IC_ERR_X', 'x'); // a second attempt
    await db.recordFailure(2, 'files', 'session-recording|h|b', 'IC_ERR_X', 'x');
    await db.recordFailure(2, 'arch', 'session-data|h|a', 'IC_ERR_X', 'x');
    let text = await metricsText(m, db);
    expect(value(text, 'ic_failed_items{destination="files"}')).toBe(2);
    expect(value(text, 'ic_failed_items{destination="arch"}')).toBe(1);
    db.markDelivered('files', 'session-recording|h|b'); // a later run delivered it
    await db.dropFailedItems([{ destination: 'arch', item: 'session-data|h|a' }]); // dismissed
    text = await metricsText(m, db);
    expect(value(text, 'ic_failed_items{destination="files"}')).toBe(1);
    expect(text).not.toMatch(/ic_failed_items\{destination="arch"\}/);
  });

  it("adds up the restarts of each destination's plugin worker over runs", async () => {
    const m = new ServiceMetrics();
    expect(await metricsText(m, db)).not.toMatch(/^ic_plugin_restarts_total\{/m);
    m.record(run('main->files', undefined, { files: 2 }));
    m.record(run('main->files', undefined, { files: 1, arch: 1 }));
    m.record(run('main->files'));
    const text = await metricsText(m, db);
    expect(text).toMatch(/^# TYPE ic_plugin_restarts_total counter$/m);
    expect(value(text, 'ic_plugin_restarts_total{destination="files"}')).toBe(3);
    expect(value(text, 'ic_plugin_restarts_total{destination="arch"}')).toBe(1);
  });

  it('counts the items still retried per destination, none once delivered', async () => {
    const m = new ServiceMetrics();
    expect(await metricsText(m, db)).not.toMatch(/^ic_items_retrying\{/m);
    await db.noteRetryable('files', 'session-recording|h|r1');
    await db.noteRetryable('files', 'session-recording|h|r1'); // a second run
    await db.noteRetryable('files', 'session-recording|h|r2');
    let text = await metricsText(m, db);
    expect(text).toMatch(/^# TYPE ic_items_retrying gauge$/m);
    expect(value(text, 'ic_items_retrying{destination="files"}')).toBe(2);
    db.markDelivered('files', 'session-recording|h|r2');
    text = await metricsText(m, db);
    expect(value(text, 'ic_items_retrying{destination="files"}')).toBe(1);
  });
});
