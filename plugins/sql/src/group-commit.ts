/**
 * Group commit: items delivered while a transaction is running wait and go together in the next one (at most
 * `max`); with `lingerMs`, a batch that is not full waits that long for more (SQLite's driver is synchronous, so
 * without it every commit — an fsync — would block the very parsing that produces the next items). With
 * `writers` > 1, that many transactions run at once (a server engine works on one batch while the next is being
 * sent). Each caller's promise settles only when its own item is committed or has failed — an Ack never runs
 * ahead of the data. `write` may answer an Error in place of a job's result: that job alone fails (a session
 * that cannot be stored). When a batch fails, its items are written again one by one, so one bad session cannot
 * hold back the others — unless the failure is destination-wide (unreachable, full, no permission:
 * DESTINATION_WIDE_CODES), which every item would meet again: then they all fail with it.
 */
import { DESTINATION_WIDE_CODES, DestinationError, isIcError } from '@integration-client/plugin-sdk';

interface Waiting<J, R> {
  readonly job: J;
  readonly signal?: AbortSignal;
  resolve(r: R): void;
  reject(e: unknown): void;
}

export class GroupCommit<J, R> {
  readonly #queue: Waiting<J, R>[] = [];
  /** Writers started (running or about to start). */
  #running = 0;

  constructor(
    private readonly write: (jobs: J[]) => Promise<(R | Error)[]>,
    private readonly max: number,
    /** How long a batch that is not full waits for more items (a synchronous driver cannot overlap I/O). */
    private readonly lingerMs = 0,
    /** Transactions at once (the driver's `writers`). */
    private readonly writers = 1,
  ) {}

  submit(job: J, signal?: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ job, signal, resolve, reject });
      // A writer starts when an item arrives and fewer than `writers` run; it takes what is queued by then.
      if (this.#running < this.writers) {
        this.#running++;
        if (this.lingerMs > 0) setTimeout(() => void this.#drain(), this.lingerMs);
        else queueMicrotask(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length) {
        const batch = this.#queue.splice(0, this.max).filter((w) => {
          if (!w.signal?.aborted) return true;
          w.reject(aborted());
          return false;
        });
        if (batch.length) await this.#run(batch);
        if (this.lingerMs > 0 && this.#queue.length && this.#queue.length < this.max)
          await new Promise((r) => setTimeout(r, this.lingerMs));
      }
    } finally {
      this.#running--;
    }
  }

  async #run(batch: Waiting<J, R>[]): Promise<void> {
    try {
      const results = await this.write(batch.map((w) => w.job));
      batch.forEach((w, i) => {
        const r = results[i]!;
        if (r instanceof Error) w.reject(r);
        else w.resolve(r);
      });
    } catch (err) {
      const wide = isIcError(err) && DESTINATION_WIDE_CODES.has(err.code);
      if (batch.length === 1 || wide) {
        for (const w of batch) w.reject(err);
        return;
      }
      for (const w of batch) await this.#run([w]);
    }
  }
}

const aborted = () =>
  new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', 'the delivery was cancelled before it was written');
