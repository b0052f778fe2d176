/** A token bucket: at most `perSecond` request starts per second on average, bursts up to `perSecond`. */
export class RateLimiter {
  #tokens: number;
  #last = performance.now();
  #queue: Promise<void> = Promise.resolve();

  constructor(private readonly perSecond: number) {
    this.#tokens = perSecond;
  }

  /** Resolves when a request may start. Callers are served in order. */
  take(): Promise<void> {
    const turn = this.#queue.then(() => this.#take());
    this.#queue = turn;
    return turn;
  }

  async #take(): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.#tokens = Math.min(this.perSecond, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000)));
    }
  }
}
