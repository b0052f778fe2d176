/**
 * Runs a schedule once: its transfers together, each site and destination opened once, the outcome recorded in
 * the run history (succeeded / partly failed / failed, counts, error). An unreachable appliance is a failed run
 * with the cursor kept — not, as in the seed, a schedule marked complete.
 */
import { setMaxListeners } from 'node:events';
import { IcError, toIcError, type Operation } from '@integration-client/plugin-sdk';
import type { ScheduleSettings } from '@integration-client/schemas';
import type { Logger } from 'pino';
import type { SettingsDb, RunOutcome } from '../settings-db/settings-db.js';
import { checkRouting } from '../settings/settings-validator.js';
import { SiteClient, type SiteClientOptions } from '../site/site-client.js';
import type { DestinationLoader } from './destinations.js';
import { HOLDER, holderGone, LEASE_SECONDS, renewing, withPair, type WaitListener } from './pair-lease.js';
import { Semaphore } from './semaphore.js';
import { transferId } from '../settings-db/settings-db.js';
import { TransferEngine, type EngineOptions, type OpenDestination, type TransferOutcome } from './transfer-engine.js';

export interface ScheduleRun {
  readonly runId: number;
  readonly schedule: string;
  readonly outcome: RunOutcome;
  readonly transfers: readonly TransferOutcome[];
  readonly seconds: number;
  readonly error?: string;
  /** Per destination whose plugin worker crashed or hung during the run: how many times it was replaced. */
  readonly pluginRestarts: Readonly<Record<string, number>>;
}

/** Limits on transfers running at once in this process (application settings). */
export interface ConcurrencyLimits {
  readonly maxConcurrentTransfers?: number;
  readonly maxConcurrentPerSite?: number;
}

/** Hears of each acknowledged item of a schedule run: its transfer (`site->destination`), data type and bytes. */
export type DeliveryListener = (transfer: string, op: Operation, bytes: number) => void;

export class ScheduleRunner {
  readonly #engine: TransferEngine;
  readonly #overall: Semaphore;
  readonly #perSite = new Map<string, Semaphore>();

  constructor(
    private readonly db: SettingsDb,
    private readonly destinations: DestinationLoader,
    private readonly log: Logger,
    private readonly engineOptions: EngineOptions = {},
    private readonly siteOptions: Partial<Pick<SiteClientOptions, 'retry' | 'headersTimeoutMs' | 'bodyTimeoutMs'>> = {},
    private readonly limits: ConcurrencyLimits = {},
  ) {
    this.#engine = new TransferEngine(db, log);
    this.#overall = new Semaphore(limits.maxConcurrentTransfers ?? 4);
  }

  /** The slot limiter of one site. */
  #site(name: string): Semaphore {
    let s = this.#perSite.get(name);
    if (!s) this.#perSite.set(name, (s = new Semaphore(this.limits.maxConcurrentPerSite ?? 2)));
    return s;
  }

  /**
   * Runs a schedule once; `onDelivered` hears of every acknowledged item, by transfer (`site->destination`), and
   * `onWaiting` of a transfer that waits for another run of its pair (see withPair), with that run's holder.
   */
  async run(
    name: string,
    signal?: AbortSignal,
    onDelivered?: DeliveryListener,
    onWaiting?: WaitListener,
  ): Promise<ScheduleRun> {
    const t0 = Date.now();
    const schedule = await this.db.schedule(name);
    const lease = `schedule:${name}`;
    if (!(await this.db.tryLease(lease, HOLDER, LEASE_SECONDS, holderGone)))
      throw new IcError(
        'IC_ERR_SCHEDULE_BUSY',
        `schedule ${JSON.stringify(name)} is already running; wait for that run to finish`,
      );
    const stopRenewing = renewing(this.db, lease, HOLDER);
    try {
      const abandoned = await this.db.closeAbandonedRuns(name);
      if (abandoned)
        this.log.warn({ schedule: name, abandoned }, 'earlier runs ended with their process; marked failed');
      return await this.#run(name, schedule, t0, signal, onDelivered, onWaiting);
    } finally {
      stopRenewing();
      await this.db.releaseLease(lease, HOLDER);
    }
  }

  /** The outcome of a transfer that did not start (see withPair): nothing moved, its cursors stay (retryable). */
  #notStarted(id: string, err: unknown): TransferOutcome {
    const e = toIcError(err, 'IC_ERR_INTERNAL');
    // Stopped (SIGTERM) while it waited is what was asked for: a warning, not a mailed error.
    this.log[e.code === 'IC_ERR_RUN_STOPPED' ? 'warn' : 'error'](
      { err: e, transfer: id },
      'the transfer did not start; its cursors stay and the next run retries',
    );
    return {
      transfer: id,
      delivered: 0,
      skipped: 0,
      deferred: 0,
      bytes: 0,
      failed: 0,
      retryable: 1,
      cursorsMoved: [],
      errors: [`${e.code}: ${e.message}`],
      byType: {},
    };
  }

  async #run(
    name: string,
    schedule: ScheduleSettings,
    t0: number,
    signal?: AbortSignal,
    onDelivered?: DeliveryListener,
    onWaiting?: WaitListener,
  ): Promise<ScheduleRun> {
    const runId = await this.db.startRun(name);
    // Every in-flight delivery listens on the run's signal.
    if (signal) setMaxListeners(0, signal);
    const opened = new Map<string, OpenDestination>();
    // One client per site, with the backup password read (and decrypted) once alongside it.
    const sites = new Map<string, { client: SiteClient; backupPassword?: string }>();
    const transfers: TransferOutcome[] = [];
    let error: string | undefined;
    try {
      for (const t of schedule.transfers)
        if (!opened.has(t.destination)) opened.set(t.destination, await this.destinations.open(t.destination));
      checkRouting(schedule, (n) => opened.get(n));
      for (const t of schedule.transfers)
        if (!sites.has(t.site)) {
          const site = await this.db.site(t.site);
          sites.set(t.site, {
            client: await SiteClient.create({ ...this.siteOptions, site, logger: this.log }),
            backupPassword: site.backupPassword,
          });
        }
      // Each transfer holds its pair while it runs (withPair); one that cannot start is a retryable outcome of its
      // own, so the others' outcomes are kept.
      const results = await Promise.all(
        schedule.transfers.map((t, i) => {
          const id = transferId(t.site, t.destination);
          const what = `run ${runId} of schedule ${JSON.stringify(name)}, transfer ${i + 1}`;
          return withPair(this.db, this.log, t, what, { signal, onWaiting }, () =>
            this.#overall.use(() =>
              this.#site(t.site).use(() =>
                this.#engine.run(
                  {
                    siteName: t.site,
                    site: sites.get(t.site)!.client,
                    backupPassword: sites.get(t.site)!.backupPassword,
                    destination: opened.get(t.destination)!,
                    dataTypes: t.dataTypes,
                  },
                  {
                    ...this.engineOptions,
                    runId,
                    signal,
                    onDelivered: onDelivered && ((op, bytes) => onDelivered(id, op, bytes)),
                  },
                ),
              ),
            ),
          ).catch((err: unknown) => this.#notStarted(id, err));
        }),
      );
      transfers.push(...results);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      this.log.error({ err, schedule: name }, 'the schedule could not run');
    } finally {
      for (const d of opened.values()) await d.instance.close().catch(() => undefined);
      for (const s of sites.values()) await s.client.close().catch(() => undefined);
    }
    const sum = (k: 'delivered' | 'skipped' | 'deferred' | 'bytes' | 'failed' | 'retryable') =>
      transfers.reduce((n, t) => n + t[k], 0);
    const counts = {
      delivered: sum('delivered'),
      skipped: sum('skipped'),
      deferred: sum('deferred'),
      bytes: sum('bytes'),
      failed: sum('failed'),
      retryable: sum('retryable'),
    };
    const problems = counts.failed + counts.retryable;
    // Stopped (SIGTERM, Ctrl-C) before it was done: what was asked for, not a failure of the site or destination.
    const outcome: RunOutcome =
      error !== undefined
        ? 'failed'
        : problems === 0
          ? 'succeeded'
          : signal?.aborted
            ? 'stopped'
            : counts.delivered === 0
              ? 'failed'
              : 'partly-failed';
    error ??= transfers.flatMap((t) => t.errors)[0];
    await this.db.finishRun(runId, outcome, counts, error);
    const pluginRestarts: Record<string, number> = {};
    for (const [dest, d] of opened) {
      const n = d.restarts?.() ?? 0;
      if (n) pluginRestarts[dest] = n;
    }
    return { runId, schedule: name, outcome, transfers, seconds: (Date.now() - t0) / 1000, error, pluginRestarts };
  }
}
