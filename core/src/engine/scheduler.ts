/**
 * The scheduler: one croner job per enabled schedule, re-read from the settings database when schedules change,
 * a schedule never overlapping itself (croner `protect` plus the database lease that `ic schedule run` also
 * takes), and a graceful stop: no new runs, running ones asked to stop, deliveries under way finished and
 * recorded, cursors of incomplete windows kept.
 */
import { Cron } from 'croner';
import { isIcError } from '@integration-client/plugin-sdk';
import type { ScheduleSettings } from '@integration-client/schemas';
import type { Logger } from 'pino';
import type { SettingsDb } from '../settings-db/settings-db.js';
import { periodMinutes } from '../settings/settings-validator.js';
import type { ScheduleRun, ScheduleRunner } from './schedule-runner.js';

/** A croner pattern and minimum interval (seconds) for a schedule's period and time of day. */
export function cronFor(s: Pick<ScheduleSettings, 'period' | 'timeOfDay'>): { pattern: string; interval?: number } {
  const minutes = periodMinutes(s.period);
  if (s.timeOfDay) {
    const [hh, mm] = s.timeOfDay.split(':').map(Number) as [number, number];
    const days = minutes / 1440;
    return { pattern: `${mm} ${hh} * * *`, ...(days > 1 && { interval: days * 86400 - 3600 }) };
  }
  if (minutes < 60 && 60 % minutes === 0) return { pattern: `*/${minutes} * * * *` };
  if (minutes % 60 === 0 && minutes < 1440 && 24 % (minutes / 60) === 0)
    return { pattern: `0 */${minutes / 60} * * *` };
  if (minutes === 1440) return { pattern: '0 0 * * *' };
  return { pattern: '* * * * *', interval: minutes * 60 - 30 };
}

export interface SchedulerOptions {
  /** How often the settings database is re-read for changed schedules (default 15 s). */
  readonly reloadMs?: number;
  /** Called after every run (for metrics and notifications). */
  readonly onRun?: (run: ScheduleRun) => void;
}

export class Scheduler {
  readonly #jobs = new Map<string, { job: Cron; key: string }>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #stop = new AbortController();
  #reload: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: SettingsDb,
    private readonly runner: ScheduleRunner,
    private readonly log: Logger,
    private readonly options: SchedulerOptions = {},
  ) {}

  /**
   * Arms every enabled schedule, and runs at once those whose last run is older than their period, did not
   * succeed (failed, stopped, or its process was killed) or never happened: a service that was down catches up
   * when it starts instead of waiting for the next slot.
   */
  async start(): Promise<void> {
    await this.sync();
    this.#reload = setInterval(
      () =>
        void this.sync().catch((err: unknown) =>
          this.log.warn({ err }, 'the schedules could not be re-read; trying again at the next reload'),
        ),
      this.options.reloadMs ?? 15_000,
    );
    const now = Date.now();
    for (const s of (await this.db.schedules()).filter((x) => x.enabled !== false)) {
      const last = (await this.db.runs(s.name, 1))[0];
      // Not succeeded: it failed, was stopped, or its process ended mid-run (no outcome at all).
      const incomplete = last !== undefined && last.outcome !== 'succeeded';
      if (!last || incomplete || Date.parse(last.startedAt) + periodMinutes(s.period) * 60_000 <= now) {
        this.log.info(
          { schedule: s.name, lastRun: last?.startedAt, lastOutcome: last?.outcome },
          'catching up: the last run did not succeed or is older than the period',
        );
        void this.runNow(s.name);
      }
    }
  }

  /** Creates, replaces or removes jobs to match the stored schedules. */
  async sync(): Promise<void> {
    const wanted = new Map((await this.db.schedules()).filter((s) => s.enabled !== false).map((s) => [s.name, s]));
    for (const [name, { job }] of this.#jobs)
      if (!wanted.has(name)) {
        job.stop();
        this.#jobs.delete(name);
        this.log.info({ schedule: name }, 'schedule removed or disabled');
      }
    for (const [name, s] of wanted) {
      const key = JSON.stringify([s.period, s.timeOfDay]);
      const have = this.#jobs.get(name);
      if (have?.key === key) continue;
      have?.job.stop();
      const { pattern, interval } = cronFor(s);
      const job = new Cron(pattern, { protect: true, interval, name: `ic:${name}` }, () => this.runNow(name));
      this.#jobs.set(name, { job, key });
      this.log.info(
        { schedule: name, period: s.period, timeOfDay: s.timeOfDay, next: job.nextRun()?.toISOString() },
        'schedule armed',
      );
    }
  }

  /** Runs a schedule now unless it is running; resolves when it has finished. */
  runNow(name: string): Promise<void> {
    const already = this.#running.get(name);
    if (already || this.#stop.signal.aborted) return already ?? Promise.resolve();
    const p = this.runner
      .run(name, this.#stop.signal)
      .then((run) => {
        this.options.onRun?.(run);
        const level = run.outcome === 'succeeded' ? 'info' : 'error';
        this.log[level](
          { schedule: name, runId: run.runId, outcome: run.outcome, error: run.error },
          'schedule run finished',
        );
      })
      .catch((err: unknown) => {
        if (isIcError(err) && err.code === 'IC_ERR_SCHEDULE_BUSY') this.log.info({ schedule: name }, err.message);
        else this.log.error({ err, schedule: name }, 'schedule run crashed');
      })
      .finally(() => this.#running.delete(name));
    this.#running.set(name, p);
    return p;
  }

  /** Next run time of every armed schedule. */
  nextRuns(): { schedule: string; next?: string }[] {
    return [...this.#jobs].map(([schedule, { job }]) => ({ schedule, next: job.nextRun()?.toISOString() }));
  }

  get running(): string[] {
    return [...this.#running.keys()];
  }

  /** Stops arming runs, asks running ones to stop, waits for them. */
  async stop(): Promise<void> {
    clearInterval(this.#reload);
    for (const { job } of this.#jobs.values()) job.stop();
    this.#jobs.clear();
    this.#stop.abort(new Error('the service is stopping'));
    await Promise.allSettled(this.#running.values());
  }
}
