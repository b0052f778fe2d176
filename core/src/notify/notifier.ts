/**
 * SMTP notifications for logged errors, grouped: the first error of a kind (its code and site/destination) is
 * mailed at once; more of the same kind within the group window are counted and sent as one summary when the
 * window closes. A site down all night therefore sends a mail per window, not one per attempt.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Notification } from '@integration-client/schemas';

export interface NotifyEvent {
  /** Grouping key: e.g. `IC_ERR_SITE_UNREACHABLE main`. */
  readonly kind: string;
  readonly subject: string;
  readonly text: string;
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
  /** Mails that could not be sent (logged by the caller's onFailure). */
  failures = 0;

  constructor(
    private readonly settings: Notification,
    private readonly onFailure: (err: unknown) => void = () => undefined,
    transport?: Transporter,
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

  /** Sends a mail now (the test mail, or a group's first event). */
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
    this.send(e.subject, e.text).catch((err: unknown) => this.#failed(err));
  }

  #close(kind: string): void {
    const g = this.#groups.get(kind);
    this.#groups.delete(kind);
    if (!g?.count || !g.last) return;
    const minutes = this.settings.groupWindowMinutes ?? 60;
    this.send(
      `${g.count} more: ${g.last.subject}`,
      `The same error happened ${g.count} more time(s) in the last ${minutes} minute(s). The latest:\n\n${g.last.text}`,
    ).catch((err: unknown) => this.#failed(err));
  }

  #failed(err: unknown): void {
    this.failures++;
    this.onFailure(err);
  }

  /** Sends the summaries of open groups and waits for every mail under way. */
  async flush(): Promise<void> {
    for (const [kind, g] of [...this.#groups]) {
      clearTimeout(g.timer);
      this.#close(kind);
    }
    await Promise.allSettled([...this.#pending]);
  }

  close(): void {
    for (const g of this.#groups.values()) clearTimeout(g.timer);
    this.#transport.close();
  }
}

/** A notify event from an error log line: grouped by error code and the site/destination/transfer it concerns. */
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
    kind: `${code} ${where.join(' ')}`,
    subject: `${code}${where.length ? ` (${where.join(', ')})` : ''}: ${msg ?? err?.message ?? 'error'}`.slice(0, 200),
    text: `${msg ?? ''}\n\n${err?.message ?? ''}${hint}\n\nWhere: ${where.join(', ') || '-'}\nWhen: ${new Date().toISOString()}`,
  };
}
