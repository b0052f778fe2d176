import type { WaitListener } from '@integration-client/core';
import { fmtBytes } from './commands/common.js';

/**
 * A one-line progress bar on standard error, for a terminal only (never in `--json` output or a pipe):
 * `[#########...........]  45%  main -> files  120 items`, or just a status line when the total is unknown.
 * Redrawn at most ten times a second; `end()` clears it.
 */
export class ProgressBar {
  #last = 0;
  #shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly width = 30,
  ) {}

  /** Whether a bar is drawn at all (standard error is a terminal). */
  get enabled(): boolean {
    return !!this.stream.isTTY;
  }

  /** Draws `fraction` (0…1) with a label; skipped when drawn less than 100 ms ago, unless `force`. */
  update(fraction: number, label: string, force = false): void {
    const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
    const full = Math.round(f * this.width);
    this.status(
      `[${'#'.repeat(full)}${'.'.repeat(this.width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%  ${label}`,
      force,
    );
  }

  /** Draws a line without a bar (work whose total is not known), under the same rate limit as `update`. */
  status(line: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const columns = this.stream.columns || 80;
    this.stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
    this.#shown = true;
  }

  end(): void {
    if (this.#shown) this.stream.write('\r\x1b[K');
    this.#shown = false;
  }
}

/**
 * `ic schedule run`'s status line on a terminal: what each transfer has delivered so far (a report's size is not
 * known up front), `main->files 120 items, 4.1 MiB  ·  main->db 200 items  (12 s)`, redrawn at least once a second.
 */
export class DeliveryProgress {
  readonly #bar = new ProgressBar();
  readonly #t0 = Date.now();
  readonly #soFar = new Map<string, { items: number; bytes: number }>();
  readonly #ticker = this.#bar.enabled ? setInterval(() => this.#draw(true), 1000) : undefined;

  /** A listener for the schedule runner; undefined when nothing is drawn (not a terminal). */
  get listener(): ((transfer: string, op: string, bytes: number) => void) | undefined {
    return this.#bar.enabled ? (transfer, _op, bytes) => this.#delivered(transfer, bytes) : undefined;
  }

  end(): void {
    clearInterval(this.#ticker);
    this.#bar.end();
  }

  #delivered(transfer: string, bytes: number): void {
    const n = this.#soFar.get(transfer) ?? { items: 0, bytes: 0 };
    this.#soFar.set(transfer, { items: n.items + 1, bytes: n.bytes + bytes });
    this.#draw();
  }

  #draw(force = false): void {
    const items = (n: number) => `${n} item${n === 1 ? '' : 's'}`;
    const each = [...this.#soFar].map(([t, n]) => `${t} ${items(n.items)}${n.bytes ? `, ${fmtBytes(n.bytes)}` : ''}`);
    const seconds = Math.round((Date.now() - this.#t0) / 1000);
    this.#bar.status(`${each.length ? each.join('  ·  ') : 'nothing delivered yet'}  (${seconds} s)`, force);
  }
}

/** Says on standard error that a transfer waits for another run of its pair (a WaitListener). */
export const sayWaiting: WaitListener = (transfer, heldBy) => {
  if (heldBy === undefined) return; // the wait is over: the progress line goes on
  process.stderr.write(
    `${process.stderr.isTTY ? '\r\x1b[K' : ''}${transfer} waits: another run is moving this pair (${heldBy}); it goes on from where that one leaves off\n`,
  );
};
