import { isIcError } from '@integration-client/plugin-sdk';

/** Bounded exponential backoff with full jitter. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). */
  readonly attempts: number;
  /** First backoff (default 500 ms); doubles each attempt. */
  readonly baseMs: number;
  /** Longest single wait (default 30 s), also the cap for a Retry-After the appliance asks for. */
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 500, maxMs: 30_000 };

/** Wait before attempt `attempt` (1-based count of failures so far): random in [0, base·2^(n-1)], capped. */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.min(policy.maxMs, Math.round(random() * policy.baseMs * 2 ** (attempt - 1)));
}

/** Milliseconds a `Retry-After` header asks for (seconds or an HTTP date), capped; undefined when absent/invalid. */
export function retryAfterMs(
  header: string | null | undefined,
  policy: RetryPolicy,
  now = Date.now(),
): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(header) - now;
  return Number.isFinite(ms) && ms >= 0 ? Math.min(policy.maxMs, ms) : undefined;
}

/**
 * How long to wait before trying again after `err` ended attempt `attempt`: what the appliance asked for
 * (`details.retryAfterMs`, from Retry-After) or the backoff; undefined when the error is not retryable or the
 * attempts are used up.
 */
export function retryDelayMs(policy: RetryPolicy, err: unknown, attempt: number): number | undefined {
  if (!isIcError(err) || !err.retryable || attempt >= policy.attempts) return undefined;
  return (err.details as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? backoffMs(policy, attempt);
}

/** Runs `fn` until it succeeds, a failure is not retryable, or attempts run out. `wait` of an error overrides the backoff. */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const waitMs = retryDelayMs(policy, err, attempt);
      if (waitMs === undefined) throw err;
      onRetry?.(err, attempt, waitMs);
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
