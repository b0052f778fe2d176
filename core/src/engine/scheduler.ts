/**
 * The scheduler: every enabled schedule's next fire time computed by croner from its pattern, and one timer for
 * the soonest of them (croner jobs with their own timers each wake every 30 s to re-check: 1,000 schedules cost
 * more CPU idle than they should). Schedules are re-read from the settings database when they change; a schedule
 * never overlaps itself (a run still going is not started again, and the database lease that `ic schedule run`
 * also takes); a graceful stop: no new runs, running ones asked to stop, deliveries under way finished and
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

/**
 * When a schedule fires next after `now`: the pattern's next match, and with a minimum `interval` (seconds) at
 * least that long after the `last` fire.
 */
export function nextFire(pattern: Cron, interval: number | undefined, now: Date, last?: Date): Date | undefined {
  const from = interval && last ? Math.max(now.getTime(), last.getTime() + interval * 1000 - 1) : now.getTime();
  return pattern.nextRun(new Date(from)) ?? undefined;
}

interface Armed {
  /** The pattern only (paused, no function: croner sets no timer for it; shared). */
  readonly pattern: Cron;
  readonly interval?: number;
  /** period and time of day: a change re-arms. */
  readonly key: string;
  next?: Date;
}

/**
 * croner patterns, one per distinct pattern text: a Cron object holds about 80 KB of tables, and its `nextRun` of
 * a paused job without a function is a pure function of the date, so schedules with the same pattern share one.
 */
const patterns = new Map<string, Cron>();
function patternOf(text: string): Cron {
  let p = patterns.get(text);
  if (!p) patterns.set(text, (p = new Cron(text, { paused: true })));
  return p;
}

/** A settings database that cannot be read is said at the first failed reload and then every this many. */
const RELOAD_WARN_EVERY = 40;

/** setTimeout's longest delay (about 24.8 days); a later fire time is re-checked then. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export interface SchedulerOptions {
  /** How often the settings database is re-read for changed schedules (default 15 s). */
  readonly reloadMs?: number;
  /** Called after every run (for metrics and notifications). */
  readonly onRun?: (run: ScheduleRun) => void;
}

/** What a run under way has delivered so far, per transfer (`/health`, `ic service status`). */
export interface RunProgress {
  readonly schedule: string;
  readonly startedAt: string;
  /** When the latest item was acknowledged (undefined: none yet): how an operator tells slow from stuck. */
  readonly lastDeliveryAt?: string;
  /** Per transfer: what it delivered so far, and while it waits for another run of its pair, that run. */
  readonly transfers: Readonly<
    Record<string, { readonly items: number; readonly bytes: number; readonly waitingFor?: string }>
  >;
}

interface Tracked {
  readonly startedAt: string;
  lastDeliveryMs?: number;
  readonly transfers: Record<string, { items: number; bytes: number; waitingFor?: string }>;
}

export class Scheduler {
  readonly #jobs = new Map<string, Armed>();
  /** The stored text of every schedule last read (enabled or not). */
  readonly #texts = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  /** The runs under way: each one's end and what it has delivered so far. */
  readonly #running = new Map<string, { readonly done: Promise<void>; readonly tracked: Tracked }>();
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
    this.#reload = setInterval(() => void this.#reloadOnce(), this.options.reloadMs ?? 15_000);
    const now = Date.now();
    // The schedules sync() just read (their stored texts), not a second query.
    for (const s of [...this.#texts.values()].map((t) => JSON.parse(t) as ScheduleSettings)) {
      if (s.enabled === false) continue;
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

  /**
   * Creates, replaces or removes jobs to match the stored schedules. Runs every reload (15 s): only schedules whose
   * stored text changed are parsed, so 1,000 unchanged schedules cost one SELECT.
   */
  async sync(): Promise<void> {
    const texts = await this.db.scheduleTexts();
    for (const name of this.#texts.keys())
      if (!texts.has(name)) {
        this.#texts.delete(name);
        this.#disarm(name, 'schedule removed');
      }
    const now = new Date();
    for (const [name, text] of texts) {
      if (this.#texts.get(name) === text) continue;
      this.#texts.set(name, text);
      const s = JSON.parse(text) as ScheduleSettings;
      if (s.enabled === false) {
        this.#disarm(name, 'schedule disabled');
        continue;
      }
      const key = JSON.stringify([s.period, s.timeOfDay]);
      if (this.#jobs.get(name)?.key === key) continue;
      const { pattern, interval } = cronFor(s);
      const armed: Armed = { pattern: patternOf(pattern), interval, key };
      armed.next = nextFire(armed.pattern, interval, now);
      this.#jobs.set(name, armed);
      this.log.info(
        { schedule: name, period: s.period, timeOfDay: s.timeOfDay, next: armed.next?.toISOString() },
        'schedule armed',
      );
    }
    this.#arm();
  }

  /**
   * A reload: while the settings database cannot be read (down, failing over) the armed schedules go on as they
   * were; that is said at the first failed reload and every RELOAD_WARN_EVERY after it (not every 15 s), and once
   * more when the schedules are read again.
   */
  async #reloadOnce(): Promise<void> {
    try {
      await this.sync();
      if (this.#failedReloads)
        this.log.info(
          { failedReloads: this.#failedReloads },
          `the schedules are read again, after ${this.#failedReloads} failed reload(s)`,
        );
      this.#failedReloads = 0;
    } catch (err) {
      const n = ++this.#failedReloads;
      if (n === 1 || n % RELOAD_WARN_EVERY === 0)
        this.log.warn(
          { err, failedReloads: n },
          `the schedules could not be re-read (${n} reload(s) in a row); the armed ones go on, and it is tried at every reload (said again every ${RELOAD_WARN_EVERY})`,
        );
    }
  }

  #failedReloads = 0;

  #disarm(name: string, why: string): void {
    if (this.#jobs.delete(name)) this.log.info({ schedule: name }, why);
  }

  /** One timer, for the soonest fire time. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stop.signal.aborted) return;
    let soonest = Infinity;
    for (const j of this.#jobs.values()) if (j.next) soonest = Math.min(soonest, j.next.getTime());
    if (soonest === Infinity) return;
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(0, soonest - Date.now()), MAX_DELAY_MS));
  }

  /** Starts every schedule that is due and works out its next fire time. */
  #fire(): void {
    const now = new Date();
    for (const [name, j] of this.#jobs)
      if (j.next && j.next.getTime() <= now.getTime()) {
        void this.runNow(name);
        j.next = nextFire(j.pattern, j.interval, now, j.next);
      }
    this.#arm();
  }

  /** Runs a schedule now unless it is running; resolves when it has finished. */
  runNow(name: string): Promise<void> {
    const already = this.#running.get(name)?.done;
    if (already || this.#stop.signal.aborted) return already ?? Promise.resolve();
    const tracked: Tracked = { startedAt: new Date().toISOString(), transfers: {} };
    const of = (transfer: string) => (tracked.transfers[transfer] ??= { items: 0, bytes: 0 });
    const p = this.runner
      .run(
        name,
        this.#stop.signal,
        (transfer, _op, bytes) => {
          const t = of(transfer);
          t.items++;
          t.bytes += bytes;
          tracked.lastDeliveryMs = Date.now();
        },
        (transfer, heldBy) => {
          const t = of(transfer);
          if (heldBy === undefined) delete t.waitingFor;
          else t.waitingFor = heldBy;
        },
      )
      .then((run) => {
        this.options.onRun?.(run);
        // A stopped run's own errors were logged as they happened; the stop itself is no news for the mail.
        const level = run.outcome === 'succeeded' ? 'info' : run.outcome === 'stopped' ? 'warn' : 'error';
        this.log[level](
          { schedule: name, runId: run.runId, outcome: run.outcome, err: codedError(run.error) },
          'schedule run finished',
        );
      })
      .catch((err: unknown) => {
        if (isIcError(err) && err.code === 'IC_ERR_SCHEDULE_BUSY') this.log.info({ schedule: name }, err.message);
        else this.log.error({ err, schedule: name }, 'schedule run crashed');
      })
      .finally(() => this.#running.delete(name));
    this.#running.set(name, { done: p, tracked });
    return p;
  }

  /** Next run time of every armed schedule. */
  nextRuns(): { schedule: string; next?: string }[] {
    return [...this.#jobs].map(([schedule, { next }]) => ({ schedule, next: next?.toISOString() }));
  }

  get running(): string[] {
    return [...this.#running.keys()];
  }

  /** The runs under way and what each has delivered so far. */
  progress(): RunProgress[] {
    return [...this.#running].map(([schedule, { tracked: t }]) => ({
      schedule,
      startedAt: t.startedAt,
      ...(t.lastDeliveryMs !== undefined && { lastDeliveryAt: new Date(t.lastDeliveryMs).toISOString() }),
      transfers: structuredClone(t.transfers),
    }));
  }

  /** Stops arming runs, asks running ones to stop, waits for them. */
  async stop(): Promise<void> {
    clearInterval(this.#reload);
    clearTimeout(this.#timer);
    this.#jobs.clear();
    this.#stop.abort(new Error('the service is stopping'));
    await Promise.allSettled([...this.#running.values()].map((r) => r.done));
  }
}

/**
 * A run's first error (`CODE: message`, as runs store it) as a coded error for the log line, so that its mail says
 * what went wrong and is grouped with the same failure of other runs.
 */
function codedError(error: string | undefined): { code: string; message: string } | undefined {
  if (error === undefined) return undefined;
  const m = /^(IC_ERR_[A-Z0-9_]+): ([\s\S]*)$/.exec(error);
  return m ? { code: m[1]!, message: m[2]! } : { code: 'ERROR', message: error };
}
