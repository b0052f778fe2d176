import { prng } from './session-data.js';

/** What the simulator can do wrong. */
export type FaultKind = '5xx' | '429' | 'reset' | 'truncate' | 'malformed' | 'error-doc' | 'token-expiry';

/** Probabilities (0–1) of each fault per API request, plus a fixed latency. */
export interface FaultRates {
  readonly latencyMs?: number;
  readonly error5xx?: number;
  readonly rate429?: number;
  readonly reset?: number;
  readonly truncate?: number;
  readonly malformed?: number;
}

/** Decides, request by request, which fault (if any) to play: injected ones first, then the rates. */
export class FaultPlan {
  readonly #queue: { kind: FaultKind; report?: string }[] = [];
  readonly #rand: () => number;

  constructor(
    private readonly rates: FaultRates,
    seed: number,
  ) {
    this.#rand = prng(seed ^ 0x5eed);
  }

  /** The next `count` matching requests (of `report`, or any API request) get `kind`. */
  inject(kind: FaultKind, count = 1, report?: string): void {
    for (let i = 0; i < count; i++) this.#queue.push({ kind, ...(report ? { report } : {}) });
  }

  get latencyMs(): number {
    return this.rates.latencyMs ?? 0;
  }

  /** The fault for a request of `report` (undefined: behave). */
  next(report: string): FaultKind | undefined {
    const i = this.#queue.findIndex((f) => !f.report || f.report === report);
    if (i >= 0) return this.#queue.splice(i, 1)[0]!.kind;
    const r = this.#rand();
    let acc = 0;
    for (const [kind, p] of [
      ['5xx', this.rates.error5xx],
      ['429', this.rates.rate429],
      ['reset', this.rates.reset],
      ['truncate', this.rates.truncate],
      ['malformed', this.rates.malformed],
    ] as const) {
      acc += p ?? 0;
      if (r < acc) return kind;
    }
    return undefined;
  }
}
