/**
 * SMTP notifications for logged errors, grouped: the first error of a kind (its code and site/destination) is
 * mailed at once; more of the same kind within the group window are counted and sent as one summary when the
 * window closes. A site down all night therefore sends a mail per window, not one per attempt. A mail the SMTP server
 * does not take (down, refusing for a while) is tried again later — after 1, 5, 15 and 60 minutes, and once more
 * when the process stops — so an error during a mail outage still reaches someone, marked as sent late. At most
 * MAX_WAITING mails wait; what does not fit is counted and said in the next mail that goes.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Notification } from '@integration-client/schemas';

export interface NotifyEvent {
  /** Grouping key: e.g. `IC_ERR_SITE_UNREACHABLE main`. */
  readonly kind: string;
  readonly subject: string;
  readonly text: string;
  /**
   * The code of the error this event sums up (a run that did not succeed, by its first error): left out when an error
   * with that code is already in an open group — its cause was mailed; a run whose problems were only warnings (items
   * retried) is mailed.
   */
  readonly covers?: string;
}

/** Delays before a mail that could not be sent is tried again; after the last, it is given up. */
export const MAIL_RETRY_DELAYS_MS: readonly number[] = [60_000, 300_000, 900_000, 3_600_000];
const MAX_WAITING = 100;

interface Waiting {
  readonly subject: string;
  readonly text: string;
  /** When it was first tried. */
  readonly at: string;
  /** Tries so far. */
  tries: number;
  timer?: NodeJS.Timeout;
}

interface Group {
  count: number;
  last?: NotifyEvent;
  timer: NodeJS.Timeout;
}

export class Notifier {
  readonly #groups = new Map<string, Group>();
  readonly #transport: Transporter;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #waiting = new Set<Waiting>();
  /** Mails given up on, or not kept because MAX_WAITING were waiting, since the last mail that went. */
  #lost = 0;
  /** Mails that could not be sent when tried (logged by the caller's onFailure). */
  failures = 0;

  /**
   * @param onFailure told of each failed try: `retryInMs` when it is tried again, undefined when it is given up.
   */
  constructor(
    private readonly settings: Notification,
    private readonly onFailure: (err: unknown, retryInMs?: number) => void = () => undefined,
    transport?: Transporter,
    private readonly retryDelaysMs: readonly number[] = MAIL_RETRY_DELAYS_MS,
  ) {
    this.#transport =
      transport ??
      nodemailer.createTransport({
        host: settings.smtpHost,
        port: settings.smtpPort ?? 587,
        secure: settings.secure ?? false,
        auth: settings.username ? { user: settings.username, pass: settings.password ?? '' } : undefined,
        connectionTimeout: 15_000,
      });
  }

  /** Sends a mail now, once (the test mail): a failure is the caller's. */
  send(subject: string, text: string): Promise<void> {
    const p = this.#transport
      .sendMail({ from: this.settings.from, to: this.settings.to, subject: `[Integration Client] ${subject}`, text })
      .then(() => undefined);
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p)).catch(() => undefined);
    return p;
  }

  /** Records an error event: mailed at once when it opens a group, counted otherwise. */
  notify(e: NotifyEvent): void {
    if (this.settings.enabled === false) return;
    if (e.covers !== undefined && [...this.#groups.keys()].some((k) => k.startsWith(`${e.covers} `))) return;
    const group = this.#groups.get(e.kind);
    if (group) {
      group.count++;
      group.last = e;
      return;
    }
    const windowMs = (this.settings.groupWindowMinutes ?? 60) * 60_000;
    const timer = setTimeout(() => this.#close(e.kind), windowMs);
    timer.unref();
    this.#groups.set(e.kind, { count: 0, timer });
    this.#mail(e.subject, e.text);
  }

  /** Sends a notification mail; one that does not go waits for its next try. */
  #mail(subject: string, text: string): void {
    void this.#try({ subject, text, at: new Date().toISOString(), tries: 0 });
  }

  /** One try of a mail; `last`: given up if it fails. */
  #try(w: Waiting, last = false): Promise<void> {
    w.tries++;
    const late = w.tries > 1 ? `\n\n(Sent late: the SMTP server did not take it at ${w.at}; try ${w.tries}.)` : '';
    const lost = this.#lost;
    const lostNote = lost ? `\n\n(${lost} earlier notification mail(s) could not be sent at all; see the log.)` : '';
    return this.send(w.subject, `${w.text}${late}${lostNote}`).then(
      () => {
        this.#waiting.delete(w);
        this.#lost -= lost;
      },
      (err: unknown) => {
        this.failures++;
        const delay = last ? undefined : this.retryDelaysMs[w.tries - 1];
        if (delay === undefined || (!this.#waiting.has(w) && this.#waiting.size >= MAX_WAITING)) {
          this.#waiting.delete(w);
          this.#lost++;
          this.onFailure(err);
          return;
        }
        this.#waiting.add(w);
        w.timer = setTimeout(() => void this.#try(w), delay);
        w.timer.unref();
        this.onFailure(err, delay);
      },
    );
  }

  #close(kind: string): void {
    const g = this.#groups.get(kind);
    this.#groups.delete(kind);
    if (!g?.count || !g.last) return;
    const minutes = this.settings.groupWindowMinutes ?? 60;
    this.#mail(
      `${g.count} more: ${g.last.subject}`,
      `The same error happened ${g.count} more time(s) in the last ${minutes} minute(s). The latest:\n\n${g.last.text}`,
    );
  }

  /**
   * Sends the summaries of open groups, tries each waiting mail once more (a process that stops keeps nothing), and
   * waits for every mail under way.
   */
  async flush(): Promise<void> {
    for (const [kind, g] of [...this.#groups]) {
      clearTimeout(g.timer);
      this.#close(kind);
    }
    await Promise.allSettled([...this.#pending]);
    const lastTries = [...this.#waiting].map((w) => {
      clearTimeout(w.timer);
      return this.#try(w, true);
    });
    await Promise.allSettled(lastTries);
  }

  /** Mails waiting for their next try. */
  get waiting(): number {
    return this.#waiting.size;
  }

  close(): void {
    for (const g of this.#groups.values()) clearTimeout(g.timer);
    for (const w of this.#waiting) clearTimeout(w.timer);
    this.#transport.close();
  }
}

/**
 * A notify event from an error log line: grouped by error code and the site/destination/transfer it concerns. A run's
 * summary (the line with its `outcome`) covers its first error's code.
 */
export function eventFromLog(bindings: Record<string, unknown>, obj: unknown, msg: string | undefined): NotifyEvent {
  const o = (typeof obj === 'object' && obj !== null ? obj : {}) as Record<string, unknown>;
  const err = o.err as { code?: string; message?: string } | undefined;
  const where = [bindings.transfer, bindings.destination, o.schedule, o.site].filter((x) => typeof x === 'string');
  const code = err?.code ?? 'ERROR';
  const hint =
    code === 'IC_ERR_SITE_AUTH_FAILED'
      ? '\n\nThe appliance refused the API account. If its password or client secret was reset or regenerated, update the site: ic site edit <name> --client-secret …'
      : '';
  return {
    ...(typeof o.outcome === 'string' && err?.code && { covers: err.code }),
    kind: `${code} ${where.join(' ')}`,
    subject: `${code}${where.length ? ` (${where.join(', ')})` : ''}: ${msg ?? err?.message ?? 'error'}`.slice(0, 200),
    text: `${msg ?? ''}${typeof o.outcome === 'string' ? `: ${o.outcome}` : ''}\n\n${err?.message ?? ''}${hint}\n\nWhere: ${where.join(', ') || '-'}\nWhen: ${new Date().toISOString()}`,
  };
}
