import { Semaphore } from './semaphore.js';

/**
 * A destination instance is shared by the transfers of one run that name it (two sites into one archive). After a
 * plugin crash with several items in it, a transfer delivers its suspects one at a time to find the one that crashes
 * it (TransferEngine.#isolate) — which only works if nothing else is in the plugin meanwhile. The gate gives that
 * transfer the instance to itself: the others' calls wait at the gate (they are not failed), and the holder starts
 * once the calls already in the plugin have finished. Holders take turns.
 */
export class DestinationGate<Holder extends object> {
  #inFlight = 0;
  #holder: Holder | undefined;
  #opened: Promise<void> = Promise.resolve();
  #drained: (() => void) | undefined;
  readonly #turns = new Semaphore(1);

  /** Undefined when `who` may call now (the hot path: nothing allocated); else when to ask again. */
  waitFor(who: Holder): Promise<void> | undefined {
    return this.#holder === undefined || this.#holder === who ? undefined : this.#opened;
  }

  /** A call goes into the instance; `left` must follow when it has settled. */
  entered(): void {
    this.#inFlight++;
  }

  readonly left = (): void => {
    if (--this.#inFlight === 0) this.#drained?.();
  };

  /** Runs `work` with the instance to `who` alone: after the calls in it have finished, the others' held back. */
  alone<T>(who: Holder, work: () => Promise<T>): Promise<T> {
    return this.#turns.use(async () => {
      let open!: () => void;
      this.#opened = new Promise<void>((resolve) => (open = resolve));
      this.#holder = who;
      try {
        // Calls settle (answer, fail, time out or are aborted with their run), so this ends.
        if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
        this.#drained = undefined;
        return await work();
      } finally {
        this.#holder = undefined;
        open();
      }
    });
  }
}
