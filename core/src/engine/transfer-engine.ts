/**
 * The transfer engine: one transfer = one site × one destination × some data types. The data path reads as one
 * line: site client (report stream) → report parser (session models + XML) → this engine (window, ledger,
 * cursor) → the destination plugin's handler.
 *
 * Semantics, beyond the seed's:
 * - Sessions are pulled by END time over [cursor − overlap, appliance now − settle], on the appliance's clock
 *   (`duration=0` asks up to the appliance's now; the `Date` header of the answer gives that now), so a host clock
 *   running ahead cannot skip data. Sessions still open are not in an end-time window; they come when they close.
 * - A delivered-items ledger (per destination and item) skips what the overlap brings again.
 * - A data type's cursor moves to the window's end only when every item of that type in the window was
 *   acknowledged, or failed for good (recorded as a failed item, to be replayed by hand). A retryable failure
 *   — appliance or destination down — keeps the cursor; the next run catches up.
 * - Site backups are taken once per run.
 */
import {
  DESTINATION_WIDE_CODES,
  IcError,
  SITE_WIDE_CODES,
  isIcError,
  MODEL_JSON,
  toIcError,
  type Ack,
  type Destination,
  type ErrorCode,
  type IcErrorLike,
  type Item,
  type Operation,
  type Presentation,
  type RecordingMeta,
  type Session,
} from '@integration-client/plugin-sdk';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { ParsedItem } from '../report/report-parser.js';
import { ownedCopy } from '../report/values.js';
import { itemKey, transferId, type FailedItem, type SettingsDb } from '../settings-db/settings-db.js';
import { downloadBackup, downloadRecording, type RecordingKind } from '../site/appliance-api.js';
import { API, LSIDS_PER_REQUEST } from '../site/api-names.js';
import type { SiteClient } from '../site/site-client.js';
import { DestinationGate } from './destination-gate.js';
import { Semaphore } from './semaphore.js';

/** A live destination instance and what its plugin declares. */
export interface OpenDestination {
  readonly name: string;
  readonly plugin: string;
  readonly operations: readonly Operation[];
  readonly instance: Destination;
  /**
   * Set while an isolated instance is still starting (DestinationLoader.open does not wait for the worker): resolves
   * when it can take calls, rejects with its load/create failure. The engine awaits it before its first delivery —
   * after the report has been requested, so the two overlap — and before it moves a cursor or sends a backup.
   */
  readonly ready?: Promise<void>;
  /** For an isolated instance: how many times its worker crashed or hung and was replaced so far. */
  readonly restarts?: () => number;
  /**
   * The instance takes a session's (presentation's) model as JSON text (an isolated one: the text crosses to its
   * worker). The engine makes the text as soon as the item is parsed, while its objects are still in the CPU's
   * caches, once for every data type that carries the model: made at the hand-over, after the ledger lookup a few
   * milliseconds later, the same text took 47–53 µs per session in the e2e benchmark; made at once, 26–32.
   */
  readonly modelAsText?: boolean;
}

export interface TransferSpec {
  readonly siteName: string;
  readonly site: SiteClient;
  readonly backupPassword?: string;
  readonly destination: OpenDestination;
  readonly dataTypes: readonly Operation[];
}

export interface EngineOptions {
  /** Seconds re-read before the cursor on every run (default 3600). */
  readonly overlapSeconds?: number;
  /** Seconds before the appliance's now that are left for the next run (default 60). */
  readonly settleSeconds?: number;
  /**
   * How far back (seconds before the host's now) the first run of a transfer reaches. Default: everything the
   * appliance still keeps (it keeps at most 90 days), asked as `end_time=0` so the host clock plays no part.
   */
  readonly initialLookbackSeconds?: number;
  /**
   * Sessions in flight at once (default 1000): parsed and handed to the destination while earlier ones are still
   * being written, so a destination can batch them (the SQL plugin writes up to 500 per transaction). At 32 the
   * engine ran SQLite / PostgreSQL deliveries at ~0.4 / 0.6 of the rate it reaches at 400; at 400 with batches of
   * 200, SQLite runs stalled on commits (fsync) in some runs (1,700 vs 2,500 sessions/s), at 1000/500 none did.
   */
  readonly concurrency?: number;
  /** Recordings (streams from the appliance) downloaded and delivered at once per transfer (default 4). */
  readonly downloads?: number;
  readonly runId?: number;
  /** Stops the run: nothing new starts; what was handed to the destination finishes (see HANDED_OVER). */
  readonly signal?: AbortSignal;
  /**
   * The API tester's mode (`ic test`): pull exactly these report parameters (a window or lsids), deliver every
   * item (in-progress sessions too), and touch neither cursors nor the delivered-items ledger nor the failed items.
   */
  readonly query?: Readonly<Record<string, string | number>>;
  /**
   * With `query`: consult and fill the delivered-items ledger and record failed items as a scheduled run does
   * (`ic failed retry`: what was delivered since is skipped, what is delivered now is not delivered again later).
   */
  readonly ledger?: boolean;
  /**
   * Called when a session (or presentation) of the pull has been dealt with, with the data types each of whose
   * items is delivered now (or was before); a type with no item (no such recording) counts as done. Not called for
   * an entry of the report that could not be read.
   */
  readonly onSettled?: (lsid: string, done: readonly Operation[]) => void;
  /** Parsed sessions from elsewhere than the site's report (`ic test --xml`); implies `query` semantics. */
  readonly source?: AsyncIterable<ParsedItem<Session>>;
  /** Called after each acknowledged item with the bytes its destination reported (progress display). */
  readonly onDelivered?: (op: Operation, bytes: number) => void;
  /**
   * Hours after which an item that keeps failing with a retryable error of its own (not its whole destination or
   * appliance) is given up on: recorded as failed for good, so its data type's cursor moves on (default 24; 0:
   * never). It must also have failed in GIVE_UP_RUNS runs. Only where the ledger is used.
   */
  readonly giveUpHours?: number;
}

/** What one transfer run did. */
export interface TransferOutcome {
  readonly transfer: string;
  /** The end-time window pulled (not in the API tester's mode, `query`). */
  readonly window?: { readonly from: number; readonly to: number };
  readonly delivered: number;
  readonly skipped: number;
  readonly deferred: number;
  readonly bytes: number;
  readonly failed: number;
  /** Retryable failures: the cursor of their data type did not move. */
  readonly retryable: number;
  readonly cursorsMoved: readonly Operation[];
  readonly errors: readonly string[];
  readonly byType: Readonly<Partial<Record<Operation, number>>>;
  /** The destination-wide error (unreachable, full, no permission) that stopped this transfer, if one did. */
  readonly haltedBy?: ErrorCode;
  /**
   * Seconds the appliance's clock was ahead of this host's (negative: behind), from its answers in this run; what
   * cursors — positions on the appliance's clock — are measured against (cursor lag in /metrics).
   */
  readonly applianceClockOffsetSeconds?: number;
}

/**
 * The signal every handler call gets from the engine: it never aborts. A run that is asked to stop starts nothing new,
 * but what it has handed over finishes and is acknowledged (the service's unit allows 120 s for that; a second
 * Ctrl-C, or SIGKILL, ends it at once — safe too). A call that hangs is the destination's to end (WorkerDestination's
 * call timeout).
 */
const HANDED_OVER = new AbortController().signal;
setMaxListeners(0, HANDED_OVER); // a destination handle watches each signal its calls carry

/** The run was asked to stop (SIGTERM/SIGINT); retryable: the next run goes on from the kept cursor. */
const stopped = () => new IcError('IC_ERR_RUN_STOPPED', 'the run was stopped before the window was complete');

const SESSION_TYPES: readonly Operation[] = [
  'session-data',
  'system-information',
  'session-recording',
  'command-shell-recording',
  'show-my-screen-recording',
];
const PRESENTATION_TYPES: readonly Operation[] = ['presentation-data', 'presentation-recording'];

/** Sessions handed to a destination before earlier ones are acknowledged; recordings downloaded at once. */
const DEFAULT_IN_FLIGHT = 1000;
/** Seconds a session must have been closed before it is pulled (application setting settleSeconds). */
export const DEFAULT_SETTLE_SECONDS = 60;
const DEFAULT_DOWNLOADS = 4;
/** See EngineOptions.giveUpHours: an item is given up on after this many hours and this many runs. */
const DEFAULT_GIVE_UP_HOURS = 24;
const GIVE_UP_RUNS = 3;
/**
 * Plugin crashes pinned on one item each (it was the only call in flight) after which a pull stops delivering its
 * suspects one at a time (see #isolate): each restart of the plugin waits twice as long as the one before.
 */
const MAX_CRASHES_ALONE = 3;

/**
 * The longest the report's reader runs before it lets the event loop turn. A report whose bytes are already
 * buffered is read in microtasks only, so without a turn nothing else runs: plugin messages wait in their outbox and
 * ledger lookups in their batch (both go at the end of a turn), the sessions they hold outlive young-generation
 * collections, and the plugin receives its work in bursts. Measured in the e2e benchmark: turns of 100–250 ms in
 * about half of the runs, each moving ~200 MB per 10,000 sessions to the old generation; with this, ~24 MB.
 */
const TURN_MS = 5;

/**
 * Whether a delivery's failure holds for everything after it, so the transfer stops there (see Tally.halted): the
 * destination cannot take anything, its configuration is refused (e.g. a database that holds the settings), or the
 * appliance cannot be used.
 */
const haltsTransfer = (code: ErrorCode): boolean =>
  DESTINATION_WIDE_CODES.has(code) || SITE_WIDE_CODES.has(code) || code === 'IC_ERR_CONFIG_INVALID';

/** What stopped a transfer (TransferOutcome.haltedBy), in words: the appliance or the destination. */
export const haltedWhy = (code: ErrorCode): string =>
  SITE_WIDE_CODES.has(code) ? 'the appliance cannot be used now' : 'the destination cannot take anything now';

/** Whether a run consults and fills the delivered-items ledger and records failed items: not `ic test`'s. */
const usesLedger = (options: EngineOptions): boolean => !options.query || options.ledger === true;

/**
 * Sessions being delivered: a count and a wake-up, not a set of promises — what each session in flight keeps
 * alive until its destination answers is copied by every young-generation collection. Not a Semaphore: at the
 * limit the report's reader stops (parses nothing more), rather than queueing parsed sessions for a slot.
 */
class InFlight {
  count = 0;
  /** Deliveries finished so far. */
  finished = 0;
  #wake: (() => void) | undefined;
  /** Called when a session's delivery has finished (never rejects, see #deliverAll). */
  readonly done = (): void => {
    this.count--;
    this.finished++;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };
  /** Resolves when the next delivery finishes. */
  next(): Promise<void> {
    return new Promise((r) => (this.#wake = r));
  }
  async drain(): Promise<void> {
    while (this.count > 0) await this.next();
  }
}

class Tally {
  /** Recording downloads of this run: each holds an appliance connection until its plugin has read it. */
  readonly downloads: Semaphore;
  constructor(downloads: number) {
    this.downloads = new Semaphore(downloads);
  }
  delivered = 0;
  skipped = 0;
  deferred = 0;
  bytes = 0;
  failed = 0;
  retryable = 0;
  /**
   * The destination said it cannot take anything now (DESTINATION_WIDE_CODES: unreachable, full, no permission; or
   * IC_ERR_CONFIG_INVALID: its configuration is refused), a download said the appliance cannot be used
   * (SITE_WIDE_CODES: unreachable, credentials or a permission refused, certificate not trusted), or the
   * delivered-items ledger cannot be read: the transfer starts nothing more — no further item, no backup — logs it
   * once, and keeps its cursors; the next run tries again.
   */
  halted: (IcErrorLike & Error) | undefined;
  /**
   * The destination's open failed items from this site, by lsid (loaded once per run): a session of the pull that
   * has them gets them taken off the list for each data type delivered now (or before).
   */
  openFailures: Map<string, FailedItem[]> | undefined;
  /**
   * Sessions (presentations) of the current pull whose delivery a plugin crash took down with other calls in flight,
   * by lsid, to be delivered again one at a time (#isolate), and the first such crash. Undefined where they cannot
   * be pulled again with the ledger on (`ic test`): there such a failure is retryable like any other.
   */
  suspects: Set<string> | undefined;
  suspectCrash: (IcErrorLike & Error) | undefined;
  readonly blocked = new Set<Operation>();
  readonly errors: string[] = [];
  readonly byType: Partial<Record<Operation, number>> = {};
}

export class TransferEngine {
  constructor(
    private readonly db: SettingsDb,
    private readonly log: Logger,
  ) {}

  /** Per destination instance (shared by the transfers of a run that name it): see DestinationGate, #isolate. */
  readonly #gates = new WeakMap<Destination, DestinationGate<TransferSpec>>();

  #gate(spec: TransferSpec): DestinationGate<TransferSpec> {
    const instance = spec.destination.instance;
    let gate = this.#gates.get(instance);
    if (!gate) this.#gates.set(instance, (gate = new DestinationGate()));
    return gate;
  }

  async run(spec: TransferSpec, options: EngineOptions = {}): Promise<TransferOutcome> {
    const id = transferId(spec.siteName, spec.destination.name);
    const log = this.log.child({ transfer: id });
    const tally = new Tally(options.downloads ?? DEFAULT_DOWNLOADS);
    const moved: Operation[] = [];
    let window: { from: number; to: number } | undefined;
    const groups: [readonly Operation[], 'session' | 'presentation'][] = [
      [SESSION_TYPES, 'session'],
      [PRESENTATION_TYPES, 'presentation'],
    ];
    for (const [types, kind] of groups) {
      // In the engine's order whatever order the transfer names them in: data before what attaches to it (SQL's
      // system information needs its session's rows).
      const wanted = types.filter((t) => spec.dataTypes.includes(t));
      if (!wanted.length) continue;
      try {
        if (tally.halted) continue; // presentations after sessions: not pulled, their cursors stay
        if (options.signal?.aborted) throw stopped(); // nor asked for once the run is stopping
        window = await this.#pull(spec, id, wanted, kind, tally, options, log);
        for (const t of wanted)
          if (!options.query && !tally.blocked.has(t) && !tally.halted) {
            await this.db.setCursor(id, t, window.to);
            moved.push(t);
          }
      } catch (err) {
        const e = toIcError(err, 'IC_ERR_INTERNAL');
        tally.retryable++;
        tally.errors.push(`${e.code}: ${e.message}`);
        // An appliance that cannot be used at all (unreachable, refusing the credentials, its certificate not
        // trusted) would fail the presentations and the backup the same way: the transfer stops here, said once.
        // Not for a refused permission: the Backup API has its own.
        if (haltsTransfer(e.code) && e.code !== 'IC_ERR_SITE_FORBIDDEN') tally.halted ??= e;
        // Stopped (SIGTERM, Ctrl-C) is what was asked for: a warning, not a mailed error.
        if (e.code === 'IC_ERR_RUN_STOPPED')
          log.warn(
            { kind },
            'stopped before the window was complete: its cursor stays and the next run goes on from it',
          );
        else
          log.error(
            { err: e, kind },
            `pulling the report or recording its progress failed; ${tally.halted === e ? 'this transfer starts nothing more, ' : ''}the cursor stays and the next run catches up`,
          );
      }
    }
    if (spec.dataTypes.includes('site-backup') && !options.signal?.aborted && !tally.halted)
      await this.#backup(spec, tally, options, log);
    const outcome: TransferOutcome = {
      transfer: id,
      window: options.query ? undefined : window, // the API tester's pull is its own query, not a cursor window
      delivered: tally.delivered,
      skipped: tally.skipped,
      deferred: tally.deferred,
      bytes: tally.bytes,
      failed: tally.failed,
      retryable: tally.retryable,
      cursorsMoved: moved,
      errors: tally.errors,
      byType: tally.byType,
      ...(tally.halted && { haltedBy: tally.halted.code }),
      applianceClockOffsetSeconds: spec.site.clockOffsetSeconds(),
    };
    log.info(
      {
        ...outcome,
        errors: outcome.errors.length,
        sessionsInFlight: options.concurrency ?? DEFAULT_IN_FLIGHT,
        downloads: options.downloads ?? DEFAULT_DOWNLOADS,
      },
      'transfer finished',
    );
    return outcome;
  }

  async #pull(
    spec: TransferSpec,
    id: string,
    types: Operation[],
    kind: 'session' | 'presentation',
    tally: Tally,
    options: EngineOptions,
    log: Logger,
  ): Promise<{ from: number; to: number }> {
    const overlap = options.overlapSeconds ?? 3600;
    const settle = options.settleSeconds ?? DEFAULT_SETTLE_SECONDS;
    const cursors = await Promise.all(types.map((t) => this.db.cursor(id, t)));
    if (usesLedger(options)) tally.openFailures ??= await this.#openFailures(spec);
    const from = cursors.some((c) => c === undefined)
      ? options.initialLookbackSeconds === undefined
        ? 0
        : Math.floor(Date.now() / 1000) - options.initialLookbackSeconds
      : Math.max(0, Math.min(...(cursors as number[])) - overlap);
    const params = options.query ?? { [API.params.endTime]: from, [API.params.duration]: 0 };
    const items: AsyncIterable<ParsedItem<Session | Presentation>> =
      options.source && kind === 'session'
        ? options.source
        : kind === 'session'
          ? spec.site.sessions(params)
          : spec.site.presentations(params);
    let to: number | undefined;
    // The window ends at the appliance's time when the report was asked for, less the settle time: the report holds
    // what had ended by then. Not when its answer came: an appliance that took longer than the settle time to make
    // a large report would have the cursor pass sessions that ended meanwhile, which only the overlap brought back.
    const askedAt = Date.now();
    const windowEnd = () => Math.floor((spec.site.applianceNow() - (Date.now() - askedAt)) / 1000) - settle;
    const inFlight = new InFlight();
    const limit = options.concurrency ?? DEFAULT_IN_FLIGHT;
    tally.suspects = usesLedger(options) && !options.source ? new Set() : undefined;
    let turnStarted = performance.now();
    let started = !spec.destination.ready;
    try {
      for await (const parsed of items) {
        if (!started) {
          await spec.destination.ready; // a destination that cannot start fails the pull before any delivery
          started = true;
        }
        to ??= windowEnd(); // the answer's Date header has set the appliance clock by now
        if (options.signal?.aborted) throw stopped();
        if (tally.halted) break; // the rest waits for the next run, whose cursor has not passed it
        if (!parsed.ok) {
          tally.failed++;
          tally.errors.push(`${parsed.error.code}: ${parsed.error.message}`);
          if (usesLedger(options))
            for (const op of types)
              await this.db.recordFailure(
                options.runId,
                spec.destination.name,
                itemKey(op, spec.site.host, parsed.lsid ?? '?'),
                parsed.error.code,
                parsed.error.message,
              );
          log.error(
            { err: parsed.error, lsid: parsed.lsid },
            `a session in the report is invalid; ${usesLedger(options) ? 'recorded as a failed item (ic failed list), ' : ''}the others go on`,
          );
          continue;
        }
        const { endTime } = parsed.model;
        const end = endTime ? Date.parse(endTime) / 1000 : undefined;
        if (!options.query && (end === undefined || end > to)) {
          tally.deferred++;
          continue;
        }
        inFlight.count++;
        // #deliverAll records its own failures and does not reject; if it ever did, the count still comes down.
        void this.#deliverAll(spec, types, kind, parcelOf(spec, types, parsed), tally, options, log).then(
          inFlight.done,
          inFlight.done,
        );
        // The first session goes alone: a destination that cannot take anything says so once, before the others are
        // handed over (up to `limit` would otherwise be on their way to fail the same way).
        while (inFlight.count >= (inFlight.finished ? limit : 1)) await inFlight.next();
        if (performance.now() - turnStarted >= TURN_MS) {
          await new Promise(setImmediate);
          turnStarted = performance.now();
        }
      }
    } finally {
      // Stopping (SIGTERM, a failed report): calls already under way finish and are recorded; the rest of the
      // sessions in flight start nothing new (see #deliverAll).
      await inFlight.drain();
    }
    if (tally.suspects?.size) await this.#isolate(spec, types, kind, tally, options, log);
    // Stopped after the report was read but before every session was delivered: not a complete window.
    if (options.signal?.aborted) throw stopped();
    if (!started) await spec.destination.ready; // an empty window moves no cursor past a destination that cannot start
    return { from, to: to ?? windowEnd() };
  }

  /**
   * Delivers the data types of one session in order (data first, so SQL has the rows system information needs).
   * Never rejects: every failure is recorded in the tally.
   */
  async #deliverAll(
    spec: TransferSpec,
    types: Operation[],
    kind: 'session' | 'presentation',
    parcel: Parcel,
    tally: Tally,
    options: EngineOptions,
    log: Logger,
    /** Set by #isolate, which delivers one session at a time: the plugin breaks it saw, pinned and not. */
    alone?: { pinned: number; unpinned: boolean },
  ): Promise<void> {
    const host = spec.site.host;
    const site = { host, name: spec.siteName };
    const { lsid } = parcel.model!;
    const ledger = usesLedger(options);
    try {
      const meta = recordingFacts(parcel.model!);
      const plan = types.map((op) => [op, units(op, kind, parcel.model!)] as const);
      // Per data type, its items delivered now or before (for onSettled and failed items of this session only).
      const failedHere = tally.openFailures?.get(lsid);
      const settled = (options.onSettled || failedHere) && plan.map(() => 0);
      const lastData = types.findLastIndex((op) => DATA_TYPES.has(op));
      // Index loops, not iterators: this frame (and whatever it holds) lives until the destination answers.
      for (let i = 0; i < plan.length; i++) {
        const [op, opUnits] = plan[i]!;
        if (i > lastData) parcel.release(); // also when the last data item was skipped (delivered before, stopping)
        for (let u = 0; u < opUnits.length; u++) {
          const unit = opUnits[u]!;
          // Another transfer has the destination to itself for a while (#isolate): wait before a recording's
          // download is started, not with its stream open.
          const held = this.#gate(spec).waitFor(spec);
          if (held) await held;
          // Stopping (SIGTERM), or the destination cannot take anything: what has not started is left for the next
          // run, whose cursor has not passed it.
          if (options.signal?.aborted || tally.halted) {
            tally.blocked.add(op);
            continue;
          }
          const key = itemKey(op, host, lsid, unit.instance);
          let delivered: boolean;
          try {
            delivered = ledger && (await this.db.wasDelivered(spec.destination.name, key));
          } catch (err) {
            // The ledger cannot be read (settings database gone): not delivered now, the cursor stays — and, as for
            // a destination that cannot take anything, the transfer starts nothing more and says so once.
            const e = toIcError(err, 'IC_ERR_SETTINGS_DB_UNAVAILABLE');
            tally.retryable++;
            tally.blocked.add(op);
            if (tally.halted) continue;
            tally.halted = e;
            tally.errors.push(`${e.code}: ${e.message}`);
            log.error(
              { err: e, item: key },
              'the delivered-items ledger could not be read: this transfer starts nothing more; its cursors stay and the next run retries',
            );
            continue;
          }
          if (delivered) {
            tally.skipped++;
            if (settled) settled[i]!++;
            continue;
          }
          try {
            // A recording waits for a download slot; one whose turn comes after a stop (SIGTERM, or the transfer
            // halted while it waited) is not started.
            const ack = unit.recording
              ? await tally.downloads.use(() =>
                  options.signal?.aborted || tally.halted
                    ? Promise.resolve(undefined)
                    : this.#deliverRecording(spec, op, unit, lsid, meta, site),
                )
              : await this.#call(spec, parcel.item(op, site, i === lastData));
            if (!ack) {
              tally.blocked.add(op);
              continue;
            }
            if (ledger) this.db.markDelivered(spec.destination.name, key, ack.location);
            options.onDelivered?.(op, ack.bytes ?? 0);
            tally.delivered++;
            tally.bytes += ack.bytes ?? 0;
            tally.byType[op] = (tally.byType[op] ?? 0) + 1;
            if (settled) settled[i]!++;
          } catch (err) {
            const e = toIcError(err, 'IC_ERR_PLUGIN_ERROR_UNCODED');
            const wide = haltsTransfer(e.code);
            // A plugin crash fails every call in flight, and a plugin spinning on one item times out every call
            // behind it: with this one alone in the plugin, this item did it; with others, which one did cannot be
            // told — the session is delivered again on its own after the pull (#isolate).
            const crash = pluginBreak(e);
            if (crash === 'unpinned' && !alone && tally.suspects && !options.signal?.aborted) {
              tally.suspects.add(lsid);
              tally.suspectCrash ??= e;
              return; // the rest of this session goes with it, alone
            }
            if (alone && crash === 'own') alone.pinned++;
            if (alone && crash === 'unpinned') alone.unpinned = true;
            // An item of its own that keeps failing retryably would hold its cursor back every run until the
            // appliance drops its session (90 days): after a while it becomes a failed item (ic failed retry). Not
            // counted: a crash not pinned on it.
            const message = crash === 'own' ? `${e.message} (on this item alone)` : e.message;
            const givenUp =
              e.retryable && !wide && crash !== 'unpinned' && ledger && !options.signal?.aborted
                ? await this.#givesUp(spec.destination.name, key, { code: e.code, message }, options, log)
                : undefined;
            const why = givenUp ? `${message} (${givenUp})` : message;
            if ((e.retryable && !givenUp) || wide) {
              tally.retryable++;
              tally.blocked.add(op);
            }
            // A destination that cannot take anything (unreachable, full, refusing) is said once per transfer: the
            // deliveries already on their way when it was found fail the same way and are only counted.
            if (wide && tally.halted) continue;
            tally.errors.push(`${e.code}: ${why}`);
            if (wide) {
              tally.halted = e;
              log.error(
                { err: e, item: key },
                `${haltedWhy(e.code)}: this transfer starts nothing more; its cursors stay and the next run retries`,
              );
            } else if (e.retryable && !givenUp)
              log.warn(
                { err: e, item: key },
                crash === 'own'
                  ? `the plugin ${e.code === 'IC_ERR_PLUGIN_TIMEOUT' ? 'timed out' : 'crashed'} on this item alone (retryable); the cursor stays and the next run retries`
                  : 'delivery failed (retryable); the cursor stays and the next run retries',
              );
            else {
              tally.failed++;
              if (ledger) await this.db.recordFailure(options.runId, spec.destination.name, key, e.code, why);
              log.error(
                { err: e, item: key, ...(givenUp && { givenUp }) },
                `delivery failed for good; ${ledger ? 'recorded as a failed item (ic failed list), ' : ''}the others go on`,
              );
            }
          }
        }
      }
      if (settled) {
        const done = plan.filter(([, u], i) => settled[i] === u.length).map(([op]) => op);
        options.onSettled?.(lsid, done);
        if (failedHere) await this.#resolved(failedHere, done, log);
      }
    } catch (err) {
      // Not expected (every call's failure is recorded above), but a rejection here must neither go unhandled (it
      // would end the host) nor let the cursor pass this session.
      const e = toIcError(err, 'IC_ERR_INTERNAL');
      tally.retryable++;
      for (const t of types) tally.blocked.add(t);
      tally.errors.push(`${e.code}: ${e.message}`);
      log.error({ err: e, lsid }, 'a delivery failed unexpectedly; the cursor stays');
    }
  }

  /**
   * Sessions (presentations) whose delivery a plugin crash took down with other calls in flight — which item crashed
   * it cannot be told — are pulled again by lsid and delivered one at a time, the ledger skipping what had landed:
   * the others land in this run, and one that crashes the plugin on its own is that item's failure, counted towards
   * giving up on it like any retryable failure of its own. Without this, an item that crashes its plugin every time
   * took the calls in flight down with it in every run and held its cursor back until the appliance dropped it.
   * Stops (the rest left for the next run, cursors kept) when the run is stopped or halted, after MAX_CRASHES_ALONE
   * crashes, or at a crash that cannot be pinned on one item. Other transfers of the run that share the destination
   * instance (two sites into one archive) wait while this runs (DestinationGate), so their calls are not in it.
   */
  async #isolate(
    spec: TransferSpec,
    types: Operation[],
    kind: 'session' | 'presentation',
    tally: Tally,
    options: EngineOptions,
    log: Logger,
  ): Promise<void> {
    const suspects = [...tally.suspects!];
    const crash = tally.suspectCrash!;
    tally.suspects = undefined;
    tally.suspectCrash = undefined;
    const left = new Set(suspects);
    const alone = { pinned: 0, unpinned: false };
    const stop = () => options.signal?.aborted || tally.halted || alone.unpinned || alone.pinned >= MAX_CRASHES_ALONE;
    log.warn(
      { err: crash, [`${kind}s`]: suspects.length },
      `the plugin ${crash.code === 'IC_ERR_PLUGIN_TIMEOUT' ? 'hung' : 'crashed'} with ${suspects.length} ${kind}s in flight; they are delivered again one at a time, to find the item it ${crash.code === 'IC_ERR_PLUGIN_TIMEOUT' ? 'hangs' : 'crashes'} on`,
    );
    // Other transfers of the run to this destination wait meanwhile, so that a crash is pinned on the one item in it.
    await this.#gate(spec).alone(spec, async () => {
      for (let at = 0; at < suspects.length && !stop(); at += LSIDS_PER_REQUEST) {
        const params = { [API.params.lsids]: suspects.slice(at, at + LSIDS_PER_REQUEST).join(',') };
        const items: AsyncIterable<ParsedItem<Session | Presentation>> =
          kind === 'session' ? spec.site.sessions(params) : spec.site.presentations(params);
        for await (const parsed of items) {
          if (stop()) break;
          if (!parsed.ok || !left.delete(parsed.model.lsid)) continue;
          await this.#deliverAll(spec, types, kind, parcelOf(spec, types, parsed), tally, options, log, alone);
        }
      }
    });
    if (!left.size) return;
    // Not delivered again (stopped, halted, crashes, or no longer returned): retryable, the cursors stay.
    tally.retryable += left.size;
    for (const t of types) tally.blocked.add(t);
    tally.errors.push(`${crash.code}: ${crash.message} (${left.size} ${kind}s in flight; the next run retries them)`);
    log.warn(
      { [`${kind}s`]: left.size },
      `${left.size} ${kind}s the crash took down were not delivered again in this run; the cursor stays and the next run retries them`,
    );
  }

  /**
   * Notes a retryable failure of an item of its own and says whether to give up on it now: failed in GIVE_UP_RUNS
   * runs, the first at least `giveUpHours` ago. Returns the reason in words, or undefined to retry it next run (also
   * when the settings database cannot say: then nothing is given up).
   */
  async #givesUp(
    destination: string,
    key: string,
    error: { readonly code: string; readonly message: string },
    options: EngineOptions,
    log: Logger,
  ): Promise<string | undefined> {
    const hours = options.giveUpHours ?? DEFAULT_GIVE_UP_HOURS;
    if (hours <= 0) return undefined;
    try {
      const { runs, since } = await this.db.noteRetryable(destination, key, error);
      if (runs < GIVE_UP_RUNS || Date.now() - Date.parse(since) < hours * 3_600_000) return undefined;
      await this.db.forgetRetrying(destination, key);
      return `failed in ${runs} runs since ${since}: given up after ${hours} h (setting giveUpHours), so its cursor can move on`;
    } catch (err) {
      log.warn({ err, item: key }, 'the retryable failures of an item could not be counted; it is retried next run');
      return undefined;
    }
  }

  /** The destination's open failed items from this site, by lsid. */
  async #openFailures(spec: TransferSpec): Promise<Map<string, FailedItem[]>> {
    const byLsid = new Map<string, FailedItem[]>();
    for (const f of await this.db.failedItems({ destination: spec.destination.name, limit: 1_000_000 }))
      if (f.host === spec.site.host) byLsid.set(f.lsid, [...(byLsid.get(f.lsid) ?? []), f]);
    return byLsid;
  }

  /** Takes a session's failed items off the list for the data types now delivered (a failure here only warns). */
  async #resolved(failed: readonly FailedItem[], done: readonly Operation[], log: Logger): Promise<void> {
    const items = failed.filter((f) => done.includes(f.operation));
    if (!items.length) return;
    try {
      await this.db.dropFailedItems(items);
      log.info({ items: items.map((f) => f.item) }, 'failed items delivered now: taken off the failed list');
    } catch (err) {
      log.warn({ err, items: items.map((f) => f.item) }, 'failed items delivered now could not be taken off the list');
    }
  }

  /** Downloads one recording and hands its stream to the destination. */
  async #deliverRecording(
    spec: TransferSpec,
    op: Operation,
    unit: Unit,
    lsid: string,
    meta: RecordingFacts,
    site: { host: string; name: string },
  ): Promise<Ack> {
    const d = await downloadRecording(spec.site, unit.recording!, lsid, unit.instance);
    const item = {
      operation: op as 'session-recording',
      site,
      meta: {
        siteHost: site.host,
        lsid,
        ...meta,
        instance: unit.instance,
        extension: 'flv',
        byteLength: d.byteLength,
        contentType: d.contentType,
      },
      stream: d.stream,
    };
    return this.#call(spec, item);
  }

  async #backup(spec: TransferSpec, tally: Tally, options: EngineOptions, log: Logger): Promise<void> {
    try {
      await spec.destination.ready;
      await this.#gate(spec).waitFor(spec); // not with the backup's stream open (see #deliverAll)
      const d = await downloadBackup(spec.site, spec.backupPassword);
      const ack = await this.#call(spec, {
        operation: 'site-backup',
        site: { host: spec.site.host, name: spec.siteName },
        meta: {
          siteHost: spec.site.host,
          takenAt: new Date(spec.site.applianceNow()).toISOString(),
          extension: 'nsb',
          byteLength: d.byteLength,
        },
        stream: d.stream,
      });
      tally.delivered++;
      tally.bytes += ack.bytes ?? 0;
      tally.byType['site-backup'] = 1;
      options.onDelivered?.('site-backup', ack.bytes ?? 0);
    } catch (err) {
      const e = toIcError(err, 'IC_ERR_PLUGIN_ERROR_UNCODED');
      tally.errors.push(`${e.code}: ${e.message}`);
      // Not a failed item: a backup has no cursor to pass it by, and the next run takes a new one.
      tally.retryable++;
      log.error({ err: e }, 'site backup failed; the next run takes a new one');
    }
  }

  /**
   * Calls a handler; a stream the plugin left unread is drained so the connection is freed. Not async: nothing
   * here holds the item while the destination works on it (see Parcel).
   */
  #call(spec: TransferSpec, item: Item): Promise<Ack> {
    const gate = this.#gate(spec);
    const held = gate.waitFor(spec);
    if (held) return held.then(() => this.#call(spec, item));
    gate.entered();
    return this.#handOver(spec.destination, item).finally(gate.left);
  }

  #handOver(dest: OpenDestination, item: Item): Promise<Ack> {
    const handler = dest.instance.handlers[item.operation] as
      ((i: Item, o: { signal: AbortSignal }) => Promise<Ack>) | undefined;
    const stream = 'stream' in item ? item.stream : undefined;
    // Without a stream, a module-level function: no closure per call kept alive while the destination works.
    const failed = stream
      ? (err: unknown): never => {
          if (!stream.destroyed) stream.destroy();
          return throwAsPluginError(err);
        }
      : throwAsPluginError;
    if (!handler)
      return Promise.reject(
        toIcError(
          new Error(`destination ${dest.name} has no ${item.operation} handler`),
          'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED',
        ),
      );
    try {
      return handler(item, { signal: HANDED_OVER }).catch(failed);
    } catch (err) {
      return Promise.reject(toIcError(err, 'IC_ERR_PLUGIN_ERROR_UNCODED')).catch(failed);
    }
  }
}

/**
 * Whether a failure broke the plugin (a crash, or a timeout the worker host counted calls for) with this call alone
 * in it (`own`), or with others (`unpinned`); '' for any other failure.
 */
function pluginBreak(e: IcErrorLike): 'own' | 'unpinned' | '' {
  const inFlight = e.details?.inFlight;
  if (e.code === 'IC_ERR_PLUGIN_CRASHED' || (e.code === 'IC_ERR_PLUGIN_TIMEOUT' && inFlight !== undefined))
    return inFlight === 1 ? 'own' : 'unpinned';
  return '';
}

const throwAsPluginError = (err: unknown): never => {
  throw isIcError(err) ? err : toIcError(err, 'IC_ERR_PLUGIN_ERROR_UNCODED');
};

/** Data types whose items carry the whole model and its XML. */
const DATA_TYPES: ReadonlySet<Operation> = new Set<Operation>([
  'session-data',
  'system-information',
  'presentation-data',
]);

/**
 * One session (or presentation) on its way through the engine. The model and its XML are let go as soon as the
 * last item that carries them has been handed to the destination: with 1000 sessions in flight, keeping them until
 * every data type is acknowledged kept ~10 MB of models alive through each young-generation collection, which
 * copied them again and again (70 µs of GC per session in the e2e benchmark).
 */
class Parcel {
  constructor(
    public model: Session | Presentation | undefined,
    public xml: string | undefined,
    /** The model as JSON text, for a destination that takes it so (OpenDestination.modelAsText). */
    public json?: string,
  ) {}

  /** The data item of `op`; with `last`, the parcel lets go of the model and XML. */
  item(op: Operation, site: { host: string; name: string }, last: boolean): Item {
    const { model, xml, json } = this;
    if (!model || xml === undefined) throw new Error(`the ${op} item was asked for after the session was let go`);
    if (last) this.release();
    const { lsid } = model;
    const item: Item =
      op === 'presentation-data'
        ? { operation: op, site, lsid, presentation: model as Presentation, xml }
        : { operation: op as 'session-data', site, lsid, session: model as Session, xml };
    if (json !== undefined) (item as Item & { [MODEL_JSON]?: string })[MODEL_JSON] = json;
    return item;
  }

  release(): void {
    this.model = undefined;
    this.xml = undefined;
    this.json = undefined;
  }
}

/** A parsed item's parcel; with its model's JSON text when the destination takes that and a data type carries it. */
function parcelOf(
  spec: TransferSpec,
  types: readonly Operation[],
  parsed: { readonly model: Session | Presentation; readonly xml: string },
): Parcel {
  const text = spec.destination.modelAsText && types.some((t) => DATA_TYPES.has(t));
  return new Parcel(parsed.model, parsed.xml, text ? JSON.stringify(parsed.model) : undefined);
}

/** What a recording's meta says about its session (kept instead of the session). */
type RecordingFacts = Pick<RecordingMeta, 'lseq' | 'externalKey' | 'sessionType'>;

function recordingFacts(model: Session | Presentation): RecordingFacts {
  const s = model as Session;
  const own = (text: string | undefined) => (text === undefined ? undefined : ownedCopy(text));
  // Copies: these outlive the session's model (see ownedCopy); sessionType is a slice of the report too.
  return { lseq: model.lseq, externalKey: own(s.externalKey), sessionType: own(s.sessionType) };
}

interface Unit {
  readonly recording?: RecordingKind;
  readonly instance?: number;
}

/** The deliverable units of a data type for one session: one, none (no such recording), or one per instance. */
function units(op: Operation, kind: 'session' | 'presentation', model: Session | Presentation): Unit[] {
  if (kind === 'presentation') {
    if (op === 'presentation-data') return [{}];
    return (model as Presentation).recording ? [{ recording: 'presentation' }] : [];
  }
  const s = model as Session;
  switch (op) {
    case 'session-recording':
      return s.recordings.session ? [{ recording: 'session' }] : [];
    case 'command-shell-recording':
      return s.recordings.commandShell.map((r) => ({ recording: 'command-shell' as const, instance: r.instance }));
    case 'show-my-screen-recording':
      return s.recordings.showMyScreen.map((r) => ({ recording: 'show-my-screen' as const, instance: r.instance }));
    default:
      return [{}];
  }
}
