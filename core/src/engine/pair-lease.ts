/**
 * Leases in the settings database: who runs a schedule, and who moves a site → destination pair now. Shared by every
 * process on one settings database (the service, `ic schedule run`, `ic failed retry`, other hosts on a shared
 * PostgreSQL / SQL Server settings database).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { IcError, toIcError } from '@integration-client/plugin-sdk';
import type { Logger } from 'pino';
import { transferId, type SettingsDb } from '../settings-db/settings-db.js';

/** This process, as a lease holder (`host:pid`); a holder that moves a pair adds what it is after a space. */
export const HOLDER = `${hostname()}:${process.pid}`;
/** A crashed holder's lease runs out after this; a live one renews it every third of it. */
export const LEASE_SECONDS = 120;
/** How often a transfer whose pair another run is moving looks again. */
const PAIR_POLL_MS = 1000;

/** The longest lease name and holder a settings database keeps (SQL Server's NVARCHAR(200) key columns). */
const MAX_LEASE_TEXT = 200;

/**
 * The lease of a site → destination pair: `transfer:<site->destination>`; past 200 characters (two names of up to
 * 100 each) its start and a digest of the whole, so that it fits and stays unique.
 */
export function pairLease(site: string, destination: string): string {
  const name = `transfer:${transferId(site, destination)}`;
  if (name.length <= MAX_LEASE_TEXT) return name;
  return `${name.slice(0, MAX_LEASE_TEXT - 41)}#${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** The pair holders of this process that hold (or wait for) their lease now. */
const pairsHeld = new Set<string>();

/**
 * Whether a lease's holder is gone: a process on this host that has ended (killed, crashed); or a pair holder of
 * this process that holds nothing now (its release could not be written, the settings database being away then).
 */
export function holderGone(holder: string): boolean {
  const owner = holder.split(' ', 1)[0]!;
  if (owner === HOLDER) return holder !== HOLDER && !pairsHeld.has(holder);
  const at = owner.lastIndexOf(':');
  if (owner.slice(0, at) !== hostname()) return false;
  try {
    process.kill(Number(owner.slice(at + 1)), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Renews a lease this holder has taken every third of LEASE_SECONDS until the returned function is called (a
 * failed renewal is retried a third later; a holder that stops renewing loses the lease when it runs out).
 */
export function renewing(db: SettingsDb, lease: string, holder: string): () => void {
  const renew = setInterval(
    () => void db.tryLease(lease, holder, LEASE_SECONDS).catch(() => undefined),
    (LEASE_SECONDS / 3) * 1000,
  );
  renew.unref();
  return () => clearInterval(renew);
}

/** Hears that a transfer waits for another run of its pair (with that run's holder), and with none when it is over. */
export type WaitListener = (transfer: string, heldBy?: string) => void;

export interface PairOptions {
  /** Stops the wait: then `work` does not start and this rejects (retryable). */
  readonly signal?: AbortSignal;
  readonly onWaiting?: WaitListener;
}

/**
 * Runs `work` holding the lease of the site → destination pair: two runs moving one pair at once (two schedules that
 * share it, `ic failed retry` beside a run — in one process or several on the same settings database) would each
 * deliver what the other was delivering and race each other in the destination (a SQL destination refused a
 * session's system information while the other run replaced the session). A second one waits for the first and then
 * goes on from the cursors it left. `what` says who holds it (shown to whoever waits). Rejects without starting
 * `work` if stopped while waiting, or if the lease cannot be read (retryable: nothing was moved).
 */
export async function withPair<T>(
  db: SettingsDb,
  log: Logger,
  pair: { readonly site: string; readonly destination: string },
  what: string,
  options: PairOptions,
  work: () => Promise<T>,
): Promise<T> {
  const id = transferId(pair.site, pair.destination);
  const lease = pairLease(pair.site, pair.destination);
  const holder = `${HOLDER} ${what}`.slice(0, MAX_LEASE_TEXT); // it starts with this process: holderGone reads that
  pairsHeld.add(holder);
  let waited = false;
  try {
    for (; !(await db.tryLease(lease, holder, LEASE_SECONDS, holderGone)); waited = true) {
      if (!waited) {
        const heldBy = (await db.leases()).find((l) => l.name === lease)?.holder ?? 'another run';
        log.info(
          { transfer: id, heldBy },
          'another run is moving this site → destination pair (they share its cursors): this one waits for it, then goes on from where it left off',
        );
        options.onWaiting?.(id, heldBy);
      }
      if (options.signal?.aborted || (await abortableDelay(PAIR_POLL_MS, options.signal)))
        throw new IcError(
          'IC_ERR_RUN_STOPPED',
          `${id} did not start: stopped while it waited for another run of its pair`,
        );
    }
  } catch (err) {
    pairsHeld.delete(holder);
    throw toIcError(err, 'IC_ERR_SETTINGS_DB_UNAVAILABLE');
  } finally {
    if (waited) options.onWaiting?.(id);
  }
  const stopRenewing = renewing(db, lease, holder);
  try {
    return await work();
  } finally {
    stopRenewing();
    pairsHeld.delete(holder); // if the release cannot be written, this process's next run takes the pair over
    await db.releaseLease(lease, holder).catch(() => undefined);
  }
}

/** Waits `ms`; resolves true at once if `signal` aborts meanwhile. */
function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (aborted: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(aborted);
    };
    const onAbort = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
