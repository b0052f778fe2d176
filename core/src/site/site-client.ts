/**
 * Data path, first hop: appliance → SiteClient → (parser | plugin stream).
 *
 *   request(): rate limit → bearer token → POST form → status checks (401: new token, once) → retry w/ backoff
 *   sessions(): request() → body stream → parseReport() → items; a failure mid-body re-requests and skips
 *               items already yielded, so a consumer sees each session once
 *   download(): request() → sniff first bytes (XML error?) → length-checked stream handed on unbuffered
 *
 * Every HTTP failure is wrapped here, once, into a coded SiteAccessError; nothing above sees ky or undici types.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { Readable } from 'node:stream';
import ky, { type KyInstance } from 'ky';
import type { Logger } from 'pino';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Presentation, Session, SiteSettings } from '@integration-client/schemas';
import { isIcError, SiteAccessError } from '@integration-client/plugin-sdk';
import { parseReport, type ParsedItem } from '../report/report-parser.js';
import { API } from './api-names.js';
import { LengthCheck, looksLikeXml, peek } from './binary-body.js';
import { BODY_CHUNK, http1Request, type Http1Options } from './http1.js';
import { networkError, statusError } from './http-errors.js';
import { RateLimiter } from './rate-limiter.js';
import { DEFAULT_RETRY, retryDelayMs, withRetry, type RetryPolicy } from './retry-policy.js';
import { TokenCache } from './token-cache.js';

/** Parameters of a report request besides `generate_report`. */
export type ReportParams = Readonly<Record<string, string | number>>;

/** How a SiteClient talks to its site. */
export interface SiteClientOptions {
  readonly site: Pick<SiteSettings, 'host' | 'clientId' | 'clientSecret'> &
    Partial<Pick<SiteSettings, 'caFile' | 'insecure' | 'rateLimitPerSecond' | 'name'>>;
  readonly logger: Logger;
  readonly retry?: Partial<RetryPolicy>;
  /** `https` (default); `http` only for tests against a plain simulator. */
  readonly scheme?: 'https' | 'http';
  /** Idle limits: waiting for response headers, and between two body chunks (default 60 s each). */
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
}

/**
 * Chunk size of a report body, and of any API call's but a download's (downloads: BODY_CHUNK, 1 MiB). Bigger chunks live longer: the parser keeps the text of its current
 * chunk while the sessions read from it wait for their destinations, and a chunk that outlives young collections
 * waits for a full one. 1 MiB held up to 7 KB per waiting session in the engine test "keeps no text of the report
 * alive"; 256 KiB had `parse-memory` peak at 221 MiB for 1 GB against 161 for 100 MB; 64 KiB: 142.5 and 124.8.
 */
const REPORT_CHUNK = 64 * 1024;

/** A response as the rest of the client sees it: status, headers, body as a Node stream. */
export interface HttpReply {
  readonly status: number;
  header(name: string): string | null;
  readonly body: Readable;
}

/** A binary body handed on as a stream. */
export interface Download {
  readonly stream: Readable;
  readonly byteLength?: number;
  readonly contentType?: string;
}

/** Clock differences (seconds) up to this are the Date header's resolution and the network's delay, not a fault. */
const CLOCK_WARN_S = 120;
/** Per site host: the clock difference last logged in this process (seconds this host is ahead). */
const CLOCK_WARNED = new Map<string, number>();

export class SiteClient {
  readonly host: string;
  readonly #http: KyInstance;
  readonly #agent: Agent;
  /** How #post connects: the site's TLS context, certificate checks, idle limits. */
  readonly #connect: Pick<Http1Options, 'secureContext' | 'rejectUnauthorized' | 'headersTimeoutMs' | 'bodyTimeoutMs'>;
  readonly #sockets = new Set<Socket>();
  readonly #origin: string;
  readonly #tokens: TokenCache;
  readonly #limiter: RateLimiter;
  readonly #retry: RetryPolicy;
  readonly #log: Logger;
  /** Appliance clock − host clock, from the latest answer's Date header; undefined before any answer. */
  #skewMs: number | undefined;

  private constructor(options: SiteClientOptions, ca: string | undefined) {
    const { site } = options;
    this.host = site.host;
    this.#log = options.logger.child({ site: site.name ?? site.host });
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#limiter = new RateLimiter(site.rateLimitPerSecond ?? 20);
    // One TLS context for the site, made here: given as `ca`, the ~150 system roots plus the site's CA were
    // parsed again for every connection (20–40 ms of CPU each), and every API call opens one.
    this.#connect = {
      ...(ca ? { secureContext: createSecureContext({ ca: [...rootCertificates, ca] }) } : {}),
      rejectUnauthorized: !site.insecure,
      headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
      bodyTimeoutMs: options.bodyTimeoutMs ?? 60_000,
    };
    // The token exchange (ky): pipelining 0, one request per connection, closed after the response, as the API
    // documentation asks.
    this.#agent = new Agent({
      pipelining: 0,
      headersTimeout: this.#connect.headersTimeoutMs,
      bodyTimeout: this.#connect.bodyTimeoutMs,
      connect: { secureContext: this.#connect.secureContext, rejectUnauthorized: this.#connect.rejectUnauthorized },
    });
    if (site.insecure)
      this.#log.warn(
        { host: site.host },
        'TLS certificate checks are DISABLED for this site (insecure: true); anyone on the path can read and alter its data',
      );
    this.#origin = `${options.scheme ?? 'https'}://${site.host}`;
    this.#http = ky.create({
      prefixUrl: this.#origin,
      retry: 0,
      timeout: false,
      throwHttpErrors: false,
      fetch: undiciFetchFor(this.#agent),
    });
    this.#tokens = new TokenCache(this.#http, site.host, site.clientId, () => site.clientSecret);
  }

  /** A client for one site. Reads the site's CA file, if any (trusted in addition to the system CAs). */
  static async create(options: SiteClientOptions): Promise<SiteClient> {
    let ca: string | undefined;
    if (options.site.caFile) {
      ca = await readFile(options.site.caFile, 'utf8').catch((err: Error) => {
        throw new SiteAccessError(
          'IC_ERR_SITE_TLS',
          `${options.site.host}: cannot read the CA file ${options.site.caFile}: ${err.message}${isAbsolute(options.site.caFile!) ? '' : ` (a relative path, read from the working directory ${process.cwd()}; store the absolute one: ic site edit <site> --ca-file <absolute path>)`}`,
          { cause: err },
        );
      });
    }
    return new SiteClient(options, ca);
  }

  /** The appliance's clock (from the `Date` header of the latest response), in ms since the epoch. */
  applianceNow(): number {
    return Date.now() + (this.#skewMs ?? 0);
  }

  /** Seconds the appliance's clock is ahead of this host's (negative: behind); undefined before any answer. */
  clockOffsetSeconds(): number | undefined {
    return this.#skewMs === undefined ? undefined : Math.round(this.#skewMs / 1000);
  }

  /**
   * Keeps the appliance's clock offset and says so in the log when the two clocks differ by more than
   * CLOCK_WARN_S: the seed warns that a host clock ahead of the appliance's loses data. Ours does not (windows are
   * on the appliance's clock), but the difference is worth fixing. Once per site and process, again when it moves
   * by more than a minute — not once per run.
   */
  #noteClock(skewMs: number): void {
    this.#skewMs = skewMs;
    const ahead = Math.round(-skewMs / 1000); // > 0: this host's clock is ahead
    if (Math.abs(ahead) <= CLOCK_WARN_S) {
      CLOCK_WARNED.delete(this.host);
      return;
    }
    const warned = CLOCK_WARNED.get(this.host);
    if (warned !== undefined && Math.abs(warned - ahead) <= 60) return;
    CLOCK_WARNED.set(this.host, ahead);
    this.#log.warn(
      { hostAheadSeconds: ahead },
      `this host's clock is ${Math.abs(ahead)} s ${ahead > 0 ? 'ahead of' : 'behind'} the appliance's (its Date header); transfer windows are taken on the appliance's clock, so nothing is missed, but both should use the same NTP server`,
    );
  }

  /** Streams a SupportSession report; each session is yielded once even when the body had to be fetched again. */
  sessions(params: ReportParams): AsyncGenerator<ParsedItem<Session>> {
    return this.#items(API.reports.supportSession, params, 'session') as AsyncGenerator<ParsedItem<Session>>;
  }

  /** Streams a PresentationSession report. */
  presentations(params: ReportParams): AsyncGenerator<ParsedItem<Presentation>> {
    return this.#items(API.reports.presentationSession, params, 'presentation') as AsyncGenerator<
      ParsedItem<Presentation>
    >;
  }

  async *#items(
    report: string,
    params: ReportParams,
    kind: 'session' | 'presentation',
  ): AsyncGenerator<ParsedItem<Session | Presentation>> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.request(API.reportingPath, { [API.params.report]: report, ...params }, report, {
          retry: false,
        });
        const body = res.body;
        const items: AsyncIterable<ParsedItem<Session | Presentation>> =
          kind === 'session'
            ? parseReport(body, 'session', { siteHost: this.host })
            : parseReport(body, 'presentation', { siteHost: this.host });
        for await (const item of wrapBodyErrors(items, this.host, report)) {
          const key = seenKey(item);
          if (seen.has(key)) continue;
          seen.add(key);
          yield item;
        }
        return;
      } catch (err) {
        const wait = retryDelayMs(this.#retry, err, attempt);
        if (wait === undefined) throw err;
        this.#log.warn(
          { err, report, attempt, waitMs: wait, delivered: seen.size },
          'report failed; fetching it again',
        );
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Downloads a recording or backup as a stream, after checking it is not an XML error document. */
  download(path: string, params: ReportParams, what: string): Promise<Download> {
    return withRetry(
      this.#retry,
      async () => {
        const res = await this.request(path, params, what, { retry: false, chunkBytes: BODY_CHUNK });
        const length = res.header('content-length');
        const raw = res.body;
        let head: Buffer;
        let body: Readable;
        try {
          ({ head, body } = await peek(raw));
        } catch (err) {
          throw networkError(err, this.host, what);
        }
        if (looksLikeXml(head)) {
          const text = await readAll(body, 64 * 1024);
          const message =
            /<(?:\w+:)?error[^>]*>([\s\S]*?)<\/(?:\w+:)?error>/i.exec(text)?.[1]?.trim() ?? text.slice(0, 200);
          throw new SiteAccessError(
            'IC_ERR_SITE_API_ERROR',
            `${this.host}: ${what}: the appliance answered: ${message}`,
            { details: { text: message } },
          );
        }
        const byteLength = length === null ? undefined : Number(length);
        const check = new LengthCheck(byteLength, `${this.host}: ${what}`);
        body.on('error', (err) => check.destroy(isIcError(err) ? err : networkError(err, this.host, what)));
        // The consumer may not be reading yet when the body fails (a handler still preparing): keep the error on
        // the stream (`errored`, seen by pipeline / for await) instead of an unhandled 'error' that ends the host.
        check.on('error', () => undefined);
        return { stream: body.pipe(check), byteLength, contentType: res.header('content-type') ?? undefined };
      },
      (err, attempt, waitMs) =>
        this.#log.warn(
          { err, what, attempt, waitMs },
          'download failed before any of it was handed to the destination; retrying',
        ),
    );
  }

  /**
   * One API call: rate limit, bearer token, form POST, status checks. The body comes in chunks of `chunkBytes`
   * (default REPORT_CHUNK; downloads ask for BODY_CHUNK). A 401 drops the token and retries once with
   * a new one; retryable failures (429, 5xx, resets, timeouts) are retried with backoff unless `retry` is false.
   */
  async request(
    path: string,
    params: ReportParams,
    what: string,
    options: { retry?: boolean; chunkBytes?: number } = {},
  ): Promise<HttpReply> {
    const once = async (): Promise<HttpReply> => {
      for (let refreshed = false; ; refreshed = true) {
        await this.#limiter.take();
        const token = await this.#tokens.get();
        const form = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
        let res: HttpReply;
        try {
          res = await this.#post(path, token, form, options.chunkBytes ?? REPORT_CHUNK);
        } catch (err) {
          throw networkError(err, this.host, what);
        }
        const date = res.header('date');
        if (date && !Number.isNaN(Date.parse(date))) this.#noteClock(Date.parse(date) - Date.now());
        if (res.status === 401 && !refreshed) {
          res.body.destroy();
          this.#tokens.drop();
          continue;
        }
        if (res.status < 200 || res.status > 299) {
          res.body.destroy();
          throw statusError(res.status, this.host, what, res.header('retry-after'), this.#retry);
        }
        return res;
      }
    };
    if (options.retry === false) return once();
    return withRetry(this.#retry, once, (err, attempt, waitMs) =>
      this.#log.warn({ err, what, attempt, waitMs }, 'API call failed; retrying'),
    );
  }

  /**
   * An API call whose body may be hundreds of MB (reports, recordings, backups): one HTTP/1.1 request on its own
   * connection, body read into 1 MiB chunks (64 KiB for reports; `http1.ts`). Not undici's `request` (0.45–0.62 of curl's rate on a
   * download, ADR 011) nor ky/fetch (a WHATWG body stream, slower still). ky keeps the token exchange.
   */
  async #post(path: string, token: string, form: URLSearchParams, chunkBytes: number): Promise<HttpReply> {
    const res = await http1Request({
      url: new URL(`${this.#origin}${path}`),
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' },
      body: form.toString(),
      ...this.#connect,
      chunkBytes,
      sockets: this.#sockets,
    });
    return { status: res.status, header: (n) => res.headers.get(n) ?? null, body: res.body };
  }

  /** Closes the connection pool; requests still running after 5 s (an unread body) are cut. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const sockets = [...this.#sockets].map((s) => new Promise((r) => s.once('close', r)));
    const graceful = Promise.all([this.#agent.close(), ...sockets]).then(() => true);
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), 5000)));
    if (!(await Promise.race([graceful, late]))) {
      for (const s of this.#sockets) s.destroy();
      await this.#agent.destroy();
    }
    clearTimeout(timer);
  }
}

/**
 * ky builds a global `Request`; it is sent with the fetch of the same undici package as the Agent. Node's built-in
 * fetch bundles another undici version, and mixing the two crashed the process on a slow consumer of a body whose
 * connection the appliance closed (an assertion inside undici's HTTP/1 parser).
 */
function undiciFetchFor(agent: Agent): typeof fetch {
  return (async (input: Request) => {
    const body = input.method === 'GET' || input.method === 'HEAD' ? undefined : await input.arrayBuffer();
    return undiciFetch(input.url, {
      method: input.method,
      headers: [...input.headers],
      body,
      signal: input.signal,
      dispatcher: agent,
    });
  }) as unknown as typeof fetch;
}

/**
 * The key a re-fetched report's items are recognised by: the lsid (the parser hands it on as an owned copy, so
 * keeping one per session does not keep the report's text alive — see `ownedCopy`); an item without an lsid (one
 * that could not be read) by a digest of its XML, not the XML itself.
 */
function seenKey(item: ParsedItem<Session | Presentation>): string {
  if (item.lsid === undefined) return `#${createHash('sha256').update(item.xml).digest('base64')}`;
  return item.lsid;
}

async function* wrapBodyErrors<T>(items: AsyncIterable<T>, host: string, what: string): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (err) {
    throw isIcError(err) ? err : networkError(err, host, `${what} body`);
  }
}

async function readAll(stream: Readable, max: number): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > max) {
      stream.destroy();
      break;
    }
  }
  return text;
}
