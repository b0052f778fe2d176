import { SiteAccessError } from '@integration-client/plugin-sdk';
import type { RetryPolicy } from './retry-policy.js';
import { retryAfterMs } from './retry-policy.js';

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

/** The deepest `code` in an error's cause chain (fetch wraps socket errors in a TypeError). */
function causeCode(err: unknown): string | undefined {
  let code: string | undefined;
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 6;
    e = e.cause as typeof e, i++
  ) {
    if (typeof e.code === 'string') code = e.code;
  }
  return code;
}

/** Wraps a network failure (no HTTP status) of a call to `what` at `host`, once, at the client's edge. */
export function networkError(err: unknown, host: string, what: string): SiteAccessError {
  const code = causeCode(err) ?? '';
  const text = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  if (TLS_CODES.has(code) || /certificate|self.signed|TLS|SSL/i.test(text)) {
    return new SiteAccessError(
      'IC_ERR_SITE_TLS',
      `${host}: the certificate is not trusted (${code || text}); add the CA that signed it as the site's CA file`,
      { cause: err, details: { errno: code } },
    );
  }
  if (text === 'bad port') {
    // fetch (the token request) refuses the ports of the WHATWG "bad ports" list (1, 25, 6000, 10080, …).
    return new SiteAccessError(
      'IC_ERR_SITE_UNREACHABLE',
      `${host}: the port is on the list of ports HTTP clients refuse to connect to (the fetch standard's "bad ports"); an appliance is reached on its HTTPS port, usually 443: check the host`,
      { cause: err, details: { errno: 'bad port' } },
    );
  }
  if (UNREACHABLE.has(code)) {
    return new SiteAccessError(
      'IC_ERR_SITE_UNREACHABLE',
      `${host}: cannot connect (${code}); check the host name, port and network`,
      { cause: err, details: { errno: code } },
    );
  }
  return new SiteAccessError('IC_ERR_SITE_UNAVAILABLE', `${host}: ${what} failed: ${code || text}`, {
    cause: err,
    details: { errno: code },
  });
}

/** Maps a non-2xx HTTP status of a call to `what` at `host`. */
export function statusError(
  status: number,
  host: string,
  what: string,
  retryAfter: string | null,
  policy: RetryPolicy,
): SiteAccessError {
  if (status === 401)
    return new SiteAccessError(
      'IC_ERR_SITE_AUTH_FAILED',
      `${host}: ${what} was refused (401) with a fresh token; check the site's client id and secret`,
      { status },
    );
  if (status === 403)
    return new SiteAccessError(
      'IC_ERR_SITE_FORBIDDEN',
      `${host}: ${what} is forbidden (403); give the API account the permission it needs (reports and recordings, or backup)`,
      { status },
    );
  if (status === 429) {
    const wait = retryAfterMs(retryAfter, policy);
    return new SiteAccessError('IC_ERR_SITE_RATE_LIMITED', `${host}: rate limited (429) on ${what}`, {
      status,
      details: wait === undefined ? {} : { retryAfterMs: wait },
    });
  }
  if (status >= 500)
    return new SiteAccessError('IC_ERR_SITE_UNAVAILABLE', `${host}: ${what} failed with HTTP ${status}`, { status });
  return new SiteAccessError('IC_ERR_SITE_API_ERROR', `${host}: ${what} failed with HTTP ${status}`, { status });
}
