import type { KyInstance } from 'ky';
import { SiteAccessError } from '@integration-client/plugin-sdk';
import { API } from './api-names.js';
import { networkError } from './http-errors.js';

/** Refresh this long before the token's announced expiry. */
const EARLY_MS = 60_000;

/**
 * OAuth2 client-credentials tokens for one site: fetched with Basic auth, cached until shortly before
 * `expires_in`, dropped on demand (after a 401), and fetched once for concurrent callers.
 */
export class TokenCache {
  #token: { value: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;

  constructor(
    private readonly http: KyInstance,
    private readonly host: string,
    private readonly clientId: string,
    private readonly clientSecret: () => string,
  ) {}

  /** A valid bearer token, fetched when none is cached or it is about to expire. */
  get(): Promise<string> {
    if (this.#token && Date.now() < this.#token.expiresAt) return Promise.resolve(this.#token.value);
    this.#pending ??= this.#fetch().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  /** Forgets the cached token (it was refused). */
  drop(): void {
    this.#token = undefined;
  }

  async #fetch(): Promise<string> {
    const basic = Buffer.from(`${this.clientId}:${this.clientSecret()}`).toString('base64');
    let res: Response;
    try {
      res = await this.http.post(API.tokenPath.slice(1), {
        headers: { authorization: `Basic ${basic}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
    } catch (err) {
      throw networkError(err, this.host, 'the token request');
    }
    const text = await res.text();
    if (res.status === 400 || res.status === 401) {
      throw new SiteAccessError(
        'IC_ERR_SITE_AUTH_FAILED',
        `${this.host}: the appliance refused the client id/secret (HTTP ${res.status}); update the site's credentials (a regenerated secret invalidates the old one)`,
        { status: res.status },
      );
    }
    if (res.status === 403 || res.status === 404) {
      throw new SiteAccessError(
        'IC_ERR_SITE_FORBIDDEN',
        `${this.host}: the token endpoint answered ${res.status}; tick "Enable XML API" at /login > Management > API Configuration`,
        { status: res.status, details: { endpoint: 'token' } },
      );
    }
    if (!res.ok)
      throw new SiteAccessError(
        'IC_ERR_SITE_UNAVAILABLE',
        `${this.host}: the token request failed with HTTP ${res.status}`,
        { status: res.status },
      );
    let body: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new SiteAccessError('IC_ERR_SITE_API_ERROR', `${this.host}: the token response is not JSON`);
    }
    if (typeof body.access_token !== 'string' || String(body.token_type).toLowerCase() !== 'bearer') {
      throw new SiteAccessError('IC_ERR_SITE_API_ERROR', `${this.host}: the token response has no bearer access_token`);
    }
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 3600) * 1000;
    this.#token = { value: body.access_token, expiresAt: Date.now() + Math.max(lifetimeMs / 2, lifetimeMs - EARLY_MS) };
    return body.access_token;
  }
}
