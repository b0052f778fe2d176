import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cron } from 'croner';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecretBox } from '../secrets/secret-box.js';
import { eventFromLog } from '../notify/notifier.js';
import { SettingsDb } from '../settings-db/settings-db.js';
import type { ScheduleRunner } from './schedule-runner.js';
import { cronFor, nextFire, Scheduler } from './scheduler.js';

/** The next `n` fire times of a schedule after `from`, as the scheduler computes them. */
function fires(period: string, timeOfDay: string | undefined, from: Date, n: number): string[] {
  const { pattern, interval } = cronFor({ period, timeOfDay });
  const job = new Cron(pattern, { paused: true, timezone: 'UTC' });
  const out: Date[] = [];
  for (let i = 0; i < n; i++) out.push(nextFire(job, interval, out.at(-1) ?? from, out.at(-1))!);
  return out.map((d) => d.toISOString());
}

describe('cronFor: schedule periods from 1m to 7d', () => {
  const t0 = new Date('2026-01-05T10:07:30Z');
  it('maps minute and hour periods that divide the hour or day to plain cron steps', () => {
    expect(cronFor({ period: '1m' })).toEqual({ pattern: '*/1 * * * *' });
    expect(cronFor({ period: '15m' })).toEqual({ pattern: '*/15 * * * *' });
    expect(cronFor({ period: '6h' })).toEqual({ pattern: '0 */6 * * *' });
    expect(fires('15m', undefined, t0, 3)).toEqual([
      '2026-01-05T10:15:00.000Z',
      '2026-01-05T10:30:00.000Z',
      '2026-01-05T10:45:00.000Z',
    ]);
  });
  it('uses a time of day for whole days, and a minimum interval for longer or uneven periods', () => {
    expect(cronFor({ period: '1d', timeOfDay: '02:30' })).toEqual({ pattern: '30 2 * * *' });
    expect(cronFor({ period: '7d', timeOfDay: '02:30' })).toEqual({
      pattern: '30 2 * * *',
      interval: 7 * 86400 - 3600,
    });
    expect(cronFor({ period: '90m' })).toEqual({ pattern: '* * * * *', interval: 90 * 60 - 30 });
    expect(fires('1d', '02:30', t0, 2)).toEqual(['2026-01-06T02:30:00.000Z', '2026-01-07T02:30:00.000Z']);
    expect(fires('7d', '02:30', t0, 2)).toEqual(['2026-01-06T02:30:00.000Z', '2026-01-13T02:30:00.000Z']);
  });
});

describe('Scheduler: one timer for every schedule', () => {
  /** A settings database with schedules, and a runner that records what the scheduler starts (no appliance). */
  async function setup(schedules: { name: string; period: string; timeOfDay?: string }[]) {
    const dir = await mkdtemp(join(tmpdir(), 'ic-sched-'));
    const db = await SettingsDb.open(`sqlite:${join(dir, 's.db')}`, SecretBox.withKey(Buffer.alloc(32, 1)));
    for (const s of schedules) await db.putSchedule({ ...s, enabled: true, transfers: [] });
    const started: { name: string; at: string }[] = [];
    let release: (() => void) | undefined;
    const runner = {
      run: async (name: string, signal: AbortSignal) => {
        started.push({ name, at: new Date().toISOString() });
        // 'slow' runs until released or until the scheduler stops (as a real run ends when its signal aborts).
        if (name === 'slow')
          await new Promise<void>((r) => {
            release = r;
            signal.addEventListener('abort', () => r());
          });
        return { runId: 1, schedule: name, outcome: 'succeeded', transfers: [], seconds: 0 };
      },
    } as unknown as ScheduleRunner;
    const scheduler = new Scheduler(db, runner, pino({ level: 'silent' }), { reloadMs: 3_600_000 });
    return { db, scheduler, started, release: () => release?.() };
  }

  afterEach(() => vi.useRealTimers());

  it('fires each schedule at its times, never twice at once, and stops cleanly', async () => {
    vi.useFakeTimers({
      now: new Date('2026-03-02T10:00:30'),
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const { db, scheduler, started, release } = await setup([
      { name: 'every-5m', period: '5m' },
      { name: 'slow', period: '1m' },
      { name: 'uneven', period: '90m' },
    ]);
    await scheduler.sync();
    expect(
      scheduler
        .nextRuns()
        .map((r) => r.schedule)
        .sort(),
    ).toEqual(['every-5m', 'slow', 'uneven']);
    await vi.advanceTimersByTimeAsync(3 * 3600_000); // three hours
    const at = (name: string) => started.filter((s) => s.name === name).map((s) => s.at.slice(11, 16));
    expect(at('every-5m')).toHaveLength(36);
    expect(at('every-5m').slice(0, 3)).toEqual(
      ['10:05', '10:10', '10:15'].map((t) => new Date(`2026-03-02T${t}:00`).toISOString().slice(11, 16)),
    );
    expect(at('slow')).toHaveLength(1); // still running: not started again every minute
    release();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(at('slow')).toHaveLength(2);
    // 90 minutes: the first whole minute, then every 90 minutes (at least 89.5 apart).
    const uneven = started.filter((s) => s.name === 'uneven').map((s) => Date.parse(s.at));
    expect(uneven).toHaveLength(3); // 10:01, 11:31, 13:01
    expect([uneven[1]! - uneven[0]!, uneven[2]! - uneven[1]!]).toEqual([90 * 60_000, 90 * 60_000]);
    // A removed schedule stops firing at the next reload; stop() stops everything.
    await db.removeSchedule('every-5m');
    await scheduler.sync();
    const before = started.length;
    await vi.advanceTimersByTimeAsync(30 * 60_000);
    expect(started.slice(before).some((s) => s.name === 'every-5m')).toBe(false);
    await scheduler.stop();
    const stopped = started.length;
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(started.length).toBe(stopped);
    expect(scheduler.nextRuns()).toEqual([]);
    await db.close();
  });

  it('a settings database that cannot be read at reloads is said at the first, every 40th, and when it is back', async () => {
    vi.useFakeTimers({
      now: new Date('2026-03-02T10:00:30'),
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const { db } = await setup([]);
    const lines: { level: number; msg: string; failedReloads?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as never) });
    const scheduler = new Scheduler(db, {} as ScheduleRunner, log, { reloadMs: 15_000 });
    await scheduler.start();
    const down = vi.spyOn(db, 'scheduleTexts').mockRejectedValue(new Error('connection refused'));
    await vi.advanceTimersByTimeAsync(100 * 15_000); // 100 reloads, 25 minutes
    const warned = lines.filter((l) => l.level === 40);
    expect(warned.map((l) => l.failedReloads)).toEqual([1, 40, 80]);
    expect(warned[0]!.msg).toMatch(/could not be re-read \(1 reload\(s\) in a row\); the armed ones go on/);
    down.mockRestore();
    await vi.advanceTimersByTimeAsync(2 * 15_000);
    expect(lines.filter((l) => /read again/.test(l.msg)).map((l) => l.msg)).toEqual([
      'the schedules are read again, after 100 failed reload(s)',
    ]);
    await scheduler.stop();
    await db.close();
  });

  it('re-reads changes at each reload: disabled stops, edited re-arms, unchanged keeps its fire time', async () => {
    vi.useFakeTimers({
      now: new Date('2026-03-02T10:00:30'),
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const { db, scheduler, started } = await setup([
      { name: 'a', period: '5m' },
      { name: 'b', period: '10m' },
    ]);
    await scheduler.sync();
    const nextOf = (name: string) => scheduler.nextRuns().find((r) => r.schedule === name)?.next;
    const bNext = nextOf('b');
    expect(bNext).toBeDefined();
    await db.putSchedule({ name: 'a', period: '5m', enabled: false, transfers: [] });
    await scheduler.sync();
    expect(nextOf('a')).toBeUndefined();
    expect(nextOf('b')).toEqual(bNext); // untouched
    await vi.advanceTimersByTimeAsync(30 * 60_000);
    expect(started.filter((x) => x.name === 'a')).toEqual([]);
    expect(started.filter((x) => x.name === 'b')).toHaveLength(3);
    await db.putSchedule({ name: 'a', period: '1m', enabled: true, transfers: [] });
    await db.putSchedule({ name: 'b', period: '1h', enabled: true, transfers: [] });
    await scheduler.sync();
    const before = started.length;
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    const after = started.slice(before);
    expect(after.filter((x) => x.name === 'a')).toHaveLength(10); // every minute now
    expect(after.filter((x) => x.name === 'b').length).toBeLessThanOrEqual(1); // hourly now
    await scheduler.stop();
    await db.close();
  });
});

describe('Scheduler: what a finished run logs (an error line is mailed)', () => {
  it('a run that did not succeed is an error line carrying its first error, so its mail says what went wrong; a stopped one a warning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ic-sched-'));
    const db = await SettingsDb.open(`sqlite:${join(dir, 's.db')}`, SecretBox.withKey(Buffer.alloc(32, 1)));
    const outcomes: Record<string, { outcome: string; error?: string }> = {
      down: { outcome: 'failed', error: 'IC_ERR_SITE_UNREACHABLE: main: cannot connect (ECONNREFUSED)' },
      halted: { outcome: 'stopped', error: 'IC_ERR_RUN_STOPPED: the run was stopped before the window was complete' },
      fine: { outcome: 'succeeded' },
    };
    for (const name of Object.keys(outcomes))
      await db.putSchedule({ name, period: '1h', enabled: true, transfers: [] });
    const runner = {
      run: (name: string) =>
        Promise.resolve({ runId: 1, schedule: name, transfers: [], seconds: 0, ...outcomes[name] }),
    } as unknown as ScheduleRunner;
    const lines: { level: number; msg: string; obj: Record<string, unknown> }[] = [];
    const log = pino(
      {
        level: 'info',
        hooks: {
          logMethod(args, method, level) {
            if (args[1] === 'schedule run finished')
              lines.push({ level, msg: args[1], obj: args[0] as Record<string, unknown> });
            method.apply(this, args);
          },
        },
      },
      { write: () => undefined },
    );
    const scheduler = new Scheduler(db, runner, log, { reloadMs: 3_600_000 });
    for (const name of Object.keys(outcomes)) await scheduler.runNow(name);
    expect(lines.map((l) => [l.obj.schedule, l.level])).toEqual([
      ['down', 50],
      ['halted', 40],
      ['fine', 30],
    ]);
    const mail = eventFromLog({}, lines[0]!.obj, lines[0]!.msg);
    expect(mail.kind).toBe('IC_ERR_SITE_UNREACHABLE down'); // grouped with the same failure of later runs
    expect(mail.covers).toBe('IC_ERR_SITE_UNREACHABLE'); // left out when its cause was mailed (Notifier)
    expect(mail.subject).toBe('IC_ERR_SITE_UNREACHABLE (down): schedule run finished');
    expect(mail.text).toMatch(
      /^schedule run finished: failed\n\nmain: cannot connect \(ECONNREFUSED\)\n\nWhere: down\n/,
    );
    await scheduler.stop();
    await db.close();
  });
});
