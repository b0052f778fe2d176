import { Cron } from 'croner';
import { describe, expect, it } from 'vitest';
import { cronFor } from './scheduler.js';

/** The next `n` fire times of a schedule after `from`, as croner computes them. */
function fires(period: string, timeOfDay: string | undefined, from: Date, n: number): string[] {
  const { pattern, interval } = cronFor({ period, timeOfDay });
  const out: string[] = [];
  let at = from;
  for (let i = 0; i < n; i++) {
    const job = new Cron(pattern, { paused: true, timezone: 'UTC', startAt: at.toISOString() });
    let next = job.nextRun(at)!;
    // croner's `interval` is a minimum gap between runs; apply it as the scheduler's job would.
    if (interval && out.length)
      while ((next.getTime() - Date.parse(out.at(-1)!)) / 1000 < interval) next = job.nextRun(next)!;
    job.stop();
    out.push(next.toISOString());
    at = next;
  }
  return out;
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
