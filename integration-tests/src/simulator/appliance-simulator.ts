/**
 * The appliance simulator: a real HTTP(S) server on loopback speaking the OAuth2 token endpoint, the Reporting API
 * (sessions, listings, recordings, presentations) and the Backup API, with deterministic data from a seed, a
 * controllable appliance clock (sessions in progress close later), namespace and "no data" styles, token
 * lifetime and secret rotation, and fault switches. Reports and binaries are generated while they are sent.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { API } from '@integration-client/core';
import { FaultPlan, type FaultKind, type FaultRates } from './faults.js';
import { errorXml, presentationXml, rootStart, sessionXml, summaryXml, type NamespaceChoice } from './report-xml.js';
import { binaryChunks, simSession, type PopulationOptions, type SimSession } from './session-data.js';

/** Characters of closed sessions' XML the simulator keeps rendered (~64 MB; a larger report renders the rest). */
const RENDER_CACHE_CHARS = 64 * 1024 * 1024;

export interface SimulatorOptions {
  readonly seed?: number;
  readonly sessions?: number;
  /** Unix seconds of the first session start (default 2024-12-01T00:00:00Z). */
  readonly firstStart?: number;
  /** Seconds between session starts (default 600). */
  readonly spacing?: number;
  readonly eventsPerSession?: number;
  /** Appliance clock, Unix seconds (default: two hours after the last session starts, so all are closed). */
  readonly now?: number;
  readonly https?: boolean;
  readonly namespace?: NamespaceChoice;
  /** How "nothing matched" is answered: an empty root, or a localized `<error>`. */
  readonly noData?: 'empty' | 'error-en' | 'error-fr';
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly tokenLifetime?: number;
  /** `Bearer` or `bearer` in the token response. */
  readonly tokenType?: string;
  readonly recordingBytes?: number;
  readonly backupBytes?: number;
  readonly faults?: FaultRates;
  /** "Enable XML API" unticked: the token endpoint refuses with 403 [I: exact answer unknown]. */
  readonly apiEnabled?: boolean;
  /** API account permissions. */
  readonly permissions?: { readonly reporting?: boolean; readonly backup?: boolean };
}

/** What a client needs to talk to a running simulator. */
export interface SimulatorAddress {
  readonly url: string;
  readonly host: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** One request the simulator answered. */
export interface SimRequest {
  readonly path: string;
  readonly report?: string;
  readonly params: Record<string, string>;
  readonly status: number;
  readonly fault?: FaultKind;
  readonly connection?: string;
}

const EXPIRED = 'This recording has expired and can no longer be viewed or downloaded.';
const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
const NO_DATA = {
  'error-en': 'No session report information matching your chosen criteria is available.',
  'error-fr': 'Aucune information de rapport de session correspondant à vos critères n’est disponible.',
};

export class ApplianceSimulator {
  readonly population: PopulationOptions;
  readonly presentations: PopulationOptions;
  readonly requests: SimRequest[] = [];
  readonly faults: FaultPlan;
  readonly backupPasswords: string[] = [];
  clientId: string;
  clientSecret: string;
  now: number;
  namespace: NamespaceChoice;
  noData: NonNullable<SimulatorOptions['noData']>;
  permissions: { reporting: boolean; backup: boolean };
  /** Indexes of sessions whose report entry is sent without its start time (an entry the client cannot use). */
  readonly invalidSessions = new Set<number>();
  /** Lsids whose recordings the appliance answers with 500 every time (a recording it cannot read). */
  readonly brokenRecordings = new Set<string>();
  /**
   * Seconds a session or presentation report takes to make (a real appliance can take minutes over a large
   * window), waited in real time while the clock runs on as much: the report holds what had ended when it was asked
   * for, its Date header says when it was sent. 0: at once, and the clock stands still.
   */
  reportSeconds = 0;
  #server: Server | undefined;
  #tokens = new Map<string, number>();
  #byLsid = new Map<string, { s: SimSession; presentation: boolean }>();
  #address: SimulatorAddress | undefined;

  constructor(private readonly options: SimulatorOptions = {}) {
    const seed = options.seed ?? 42;
    const sessions = options.sessions ?? 100;
    const firstStart = options.firstStart ?? Date.UTC(2024, 11, 1) / 1000;
    const spacing = options.spacing ?? 600;
    this.population = { seed, sessions, firstStart, spacing, eventsPerSession: options.eventsPerSession ?? 12 };
    this.presentations = {
      ...this.population,
      seed: seed + 1,
      sessions: Math.ceil(sessions / 10),
      spacing: spacing * 10,
      eventsPerSession: 1,
    };
    this.now = options.now ?? firstStart + sessions * spacing + 7200;
    this.namespace = options.namespace ?? 'rs';
    this.noData = options.noData ?? 'empty';
    this.clientId = options.clientId ?? 'ic-test-client';
    this.clientSecret = options.clientSecret ?? randomBytes(12).toString('hex');
    this.permissions = {
      reporting: options.permissions?.reporting ?? true,
      backup: options.permissions?.backup ?? true,
    };
    this.faults = new FaultPlan(options.faults ?? {}, seed);
  }

  /** Listens on 127.0.0.1 (`port` 0 = any free port). */
  async start(port = 0): Promise<SimulatorAddress> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.#server =
      this.options.https === false
        ? createHttp(handler)
        : createHttps(
            {
              key: readFileSync(new URL('localhost.key', TLS_DIR)),
              cert: readFileSync(new URL('localhost.pem', TLS_DIR)),
            },
            handler,
          );
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', resolve));
    const p = (this.#server.address() as AddressInfo).port;
    this.#address = {
      url: `${this.options.https === false ? 'http' : 'https'}://localhost:${p}`,
      host: `localhost:${p}`,
      clientId: this.clientId,
      clientSecret: this.clientSecret,
    };
    return this.#address;
  }

  get address(): SimulatorAddress {
    return { ...this.#address!, clientSecret: this.clientSecret };
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** The CA file that trusts this simulator's certificate. */
  static get caFile(): string {
    return new URL('test-ca.pem', TLS_DIR).pathname;
  }

  /** Session `i` of the population. */
  session(i: number): SimSession {
    return simSession(this.population, i);
  }

  /** Sessions that are closed at the simulator's clock, in index order. */
  closedSessions(): SimSession[] {
    return [...this.#all(this.population)].filter((s) => s.start <= this.now && s.end <= this.now);
  }

  /** A new client secret; every token issued before is invalid at once (as on a real appliance). */
  rotateSecret(): string {
    this.clientSecret = randomBytes(12).toString('hex');
    this.#tokens.clear();
    return this.clientSecret;
  }

  /** Makes every issued token expire now. */
  expireTokens(): void {
    this.#tokens.clear();
  }

  *#all(o: PopulationOptions): Generator<SimSession> {
    for (let i = 0; i < o.sessions; i++) yield simSession(o, i);
  }

  /** A session's XML; one of invalidSessions without its start time (the parser yields it as an invalid session). */
  #sessionXml(s: SimSession, now: number): string {
    const text = this.#renderedSessionXml(s, now);
    return this.invalidSessions.has(s.index) ? text.replace(/<start_time[^>]*>[^<]*<\/start_time>\n?/, '') : text;
  }

  /**
   * A session's XML as rendered. A closed session's text never changes (for one host name), so closed sessions'
   * texts are kept, up to RENDER_CACHE_CHARS in all. The simulator stands in for an appliance on another machine,
   * yet shares the benchmarks' two cores with the client: rendering each session again for every request cost it
   * ~50 µs of CPU per session (a fifth of the client's parse).
   */
  #renderedSessionXml(s: SimSession, now: number): string {
    const host = this.#address?.host ?? 'localhost';
    if (s.end > now) return sessionXml(s, now, host);
    if (host !== this.#renderedHost) {
      this.#rendered.clear(); // started again on another port: the download URLs name the host
      this.#renderedChars = 0;
      this.#renderedHost = host;
    }
    let text = this.#rendered.get(s.index);
    if (text === undefined) {
      text = sessionXml(s, now, host);
      if (this.#renderedChars + text.length <= RENDER_CACHE_CHARS) {
        this.#rendered.set(s.index, text);
        this.#renderedChars += text.length;
      }
    }
    return text;
  }
  readonly #rendered = new Map<number, string>();
  #renderedChars = 0;
  #renderedHost = '';

  #lookup(lsid: string): { s: SimSession; presentation: boolean } | undefined {
    if (this.#byLsid.size === 0) {
      for (const s of this.#all(this.population)) this.#byLsid.set(s.lsid, { s, presentation: false });
      for (const s of this.#all(this.presentations)) this.#byLsid.set(s.lsid, { s, presentation: true });
    }
    return this.#byLsid.get(lsid);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = await readBody(req);
    const params = Object.fromEntries(url.searchParams);
    if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded'))
      Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
    if ((req.headers['content-type'] ?? '').includes('application/json') && body)
      Object.assign(params, JSON.parse(body) as Record<string, string>);
    res.setHeader('Date', new Date(this.now * 1000).toUTCString());
    res.setHeader('Connection', 'close');
    const log = (status: number, fault?: FaultKind) =>
      this.requests.push({
        path: url.pathname,
        report: params[API.params.report],
        params,
        status,
        ...(fault ? { fault } : {}),
        ...(req.headers.connection ? { connection: req.headers.connection } : {}),
      });
    if (this.faults.latencyMs) await new Promise((r) => setTimeout(r, this.faults.latencyMs));

    if (url.pathname === API.tokenPath) return this.#token(req, params, res, log);
    if (!url.pathname.startsWith('/api/')) return send(res, 404, 'text/plain', 'not found', log);
    const fault = this.faults.next(params[API.params.report] ?? url.pathname);
    if (fault === 'token-expiry') this.expireTokens();
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const expires = bearer ? this.#tokens.get(bearer) : undefined;
    if (expires === undefined || expires <= Date.now())
      return send(res, 401, 'application/json', '{"error":"invalid_token"}', log);
    if (fault === '5xx') return send(res, 503, 'text/plain', 'Service Unavailable (simulated)', (s) => log(s, fault));
    if (fault === '429') {
      res.setHeader('Retry-After', '1');
      return send(res, 429, 'text/plain', 'Too Many Requests (simulated)', (s) => log(s, fault));
    }
    if (fault === 'error-doc')
      return send(
        res,
        200,
        'text/xml',
        errorXml('Internal error while generating the report (simulated).', this.namespace),
        (s) => log(s, fault),
      );
    const kind = url.pathname === API.backupPath ? 'backup' : 'reporting';
    if (!this.permissions[kind])
      return send(res, 403, 'text/plain', `API account lacks ${kind} permission (simulated)`, log);
    if (kind === 'backup') {
      const password = params[API.params.backupPassword];
      if (password) this.backupPasswords.push(password);
      return this.#binary(
        res,
        this.options.backupBytes ?? 256 * 1024,
        999,
        'application/octet-stream',
        'backup.nsb',
        fault,
        log,
      );
    }
    return this.#report(params, res, fault, log);
  }

  #token(req: IncomingMessage, params: Record<string, string>, res: ServerResponse, log: (s: number) => void): void {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = Buffer.from(basic ?? '', 'base64')
      .toString()
      .split(':');
    if (this.options.apiEnabled === false) return send(res, 403, 'application/json', '{"error":"api_disabled"}', log);
    if (req.method !== 'POST' || params.grant_type !== 'client_credentials')
      return send(res, 400, 'application/json', '{"error":"unsupported_grant_type"}', log);
    if (id !== this.clientId || secret !== this.clientSecret)
      return send(
        res,
        401,
        'application/json',
        '{"error":"invalid_client","message":"Client authentication failed"}',
        log,
      );
    const token = randomBytes(16).toString('hex');
    const lifetime = this.options.tokenLifetime ?? 3600;
    this.#tokens.set(token, Date.now() + lifetime * 1000);
    send(
      res,
      200,
      'application/json',
      JSON.stringify({ access_token: token, token_type: this.options.tokenType ?? 'Bearer', expires_in: lifetime }),
      log,
    );
  }

  #report(
    params: Record<string, string>,
    res: ServerResponse,
    fault: FaultKind | undefined,
    log: (s: number, f?: FaultKind) => void,
  ): void {
    const R = API.reports;
    const name = params[API.params.report] ?? '';
    const lsid = params[API.params.lsid] ?? '';
    const instance = Number(params[API.params.instance] ?? 0);
    const found = this.#lookup(lsid);
    const closed = found ? found.s.end <= this.now : false;
    if (name.endsWith('Recording') && this.brokenRecordings.has(lsid))
      return send(res, 500, 'text/plain', 'Internal Server Error (simulated: a recording it cannot read)', log);
    switch (name) {
      case R.supportSession:
      case R.supportSessionListing:
      case R.presentationSession:
      case R.presentationSessionListing: {
        const presentation = name === R.presentationSession || name === R.presentationSessionListing;
        const listing = name === R.supportSessionListing || name === R.presentationSessionListing;
        const root = listing ? 'session_summary_list' : presentation ? 'presentation_list' : 'session_list';
        const render = listing
          ? summaryXml
          : presentation
            ? presentationXml
            : (s: SimSession, now: number) => this.#sessionXml(s, now);
        const selected = this.#select(presentation ? this.presentations : this.population, params);
        if (selected === undefined)
          return send(res, 200, 'text/xml', errorXml('Invalid combination of report parameters.', this.namespace), log);
        const making = this.reportSeconds;
        if (!making) return void this.#streamXml(res, root, selected, render, fault, log);
        const asked = this.now;
        return void setTimeout(() => {
          this.now = Math.max(this.now, asked + making); // reports made at the same time: the clock runs on once
          res.setHeader('Date', new Date(this.now * 1000).toUTCString());
          void this.#streamXml(res, root, selected, render, fault, log);
        }, making * 1000);
      }
      case R.sessionRecording:
        return this.#recording(
          res,
          found && !found.presentation && closed && found.s.hasRecording ? found.s.index : undefined,
          `${lsid}.flv`,
          EXPIRED,
          fault,
          log,
        );
      case R.commandShellRecording:
      case R.showMyScreenRecording: {
        const count = name === R.commandShellRecording ? found?.s.shellInstances : found?.s.smsInstances;
        const salt =
          found && closed && instance < (count ?? 0)
            ? found.s.index * 100 + instance + (name === R.showMyScreenRecording ? 50 : 1)
            : undefined;
        return this.#recording(res, salt, `${lsid}-${instance}.flv`, 'No such recording.', fault, log);
      }
      case R.presentationRecording:
        return this.#recording(
          res,
          found?.presentation && closed ? found.s.index + 500_000 : undefined,
          `${lsid}.flv`,
          EXPIRED,
          fault,
          log,
        );
      default:
        return send(res, 200, 'text/xml', errorXml(`Unknown report ${name}.`, this.namespace), log);
    }
  }

  /** A recording's bytes (chosen by `salt`), or the `<error>` the appliance sends when there is none. */
  #recording(
    res: ServerResponse,
    salt: number | undefined,
    name: string,
    missing: string,
    fault: FaultKind | undefined,
    log: (s: number, f?: FaultKind) => void,
  ): void {
    if (salt === undefined) return send(res, 200, 'text/xml', errorXml(missing, this.namespace), log);
    this.#binary(res, this.options.recordingBytes ?? 64 * 1024, salt, 'video/x-flv', name, fault, log);
  }

  /** Sessions a window / lsid query selects, or undefined for an invalid parameter set. */
  #select(o: PopulationOptions, p: Record<string, string>): SimSession[] | undefined {
    const P = API.params;
    const started = (s: SimSession) => s.start <= this.now;
    if (p[P.lsid] || p[P.lsids]) {
      const want = new Set((p[P.lsids] ?? p[P.lsid] ?? '').split(',').filter(Boolean));
      return [...this.#all(o)].filter((s) => want.has(s.lsid) && started(s));
    }
    const duration = Number(p[P.duration] ?? NaN);
    const dateAnchor = p[P.startDate] ?? p[P.endDate];
    const anchor = dateAnchor
      ? Date.parse(`${dateAnchor}T00:00:00Z`) / 1000
      : Number(p[P.startTime] ?? p[P.endTime] ?? NaN);
    if (!Number.isFinite(anchor) || !Number.isFinite(duration)) return undefined;
    const until = duration === 0 ? Infinity : anchor + duration * (dateAnchor ? 86400 : 1);
    const byEnd = P.endTime in p || P.endDate in p;
    const out: SimSession[] = [];
    const first = Math.max(0, Math.floor((anchor - o.firstStart - 4000) / o.spacing));
    for (let i = first; i < o.sessions; i++) {
      const s = simSession(o, i);
      if (s.start > this.now || s.start >= until + 4000) break;
      const t = byEnd ? s.end : s.start;
      if (byEnd && s.end > this.now) continue;
      if (t >= anchor && t < until) out.push(s);
    }
    return byEnd ? out.sort((a, b) => a.end - b.end) : out;
  }

  async #streamXml(
    res: ServerResponse,
    root: string,
    sessions: SimSession[],
    render: (s: SimSession, now: number) => string,
    fault: FaultKind | undefined,
    log: (s: number, f?: FaultKind) => void,
  ): Promise<void> {
    if (sessions.length === 0 && this.noData !== 'empty')
      return send(res, 200, 'text/xml', errorXml(NO_DATA[this.noData], this.namespace), log);
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=UTF-8' });
    log(200, fault);
    const cut =
      fault === 'reset' || fault === 'truncate' || fault === 'malformed' ? Math.floor(sessions.length / 2) : -1;
    // Sessions are written in batches of ~64 K characters, as a server with an output buffer sends them: a write per
    // session made a TLS record (and a syscall) per ~4 KB session, which cost the simulator — on the benchmarks'
    // two cores, next to the client it stands in for a remote appliance to — about half of its CPU.
    let pending = rootStart(root, this.namespace);
    const flush = async (): Promise<boolean> => {
      const text = pending;
      pending = '';
      return text === '' ? !res.destroyed : write(res, text);
    };
    for (let i = 0; i < sessions.length; i++) {
      if (i === cut) {
        if (!(await flush())) return;
        if (fault === 'malformed') await write(res, '<session lsid="broken"><lseq>1</lseq></sesion>\n');
        else if (fault === 'reset') return void res.socket?.destroy();
        return void res.end();
      }
      pending += render(sessions[i]!, this.now);
      if (pending.length >= 64 * 1024 && !(await flush())) return;
    }
    if (cut === 0) {
      if (!(await flush())) return;
      if (fault === 'reset') return void res.socket?.destroy();
      return void res.end(fault === 'malformed' ? '<broken' : '');
    }
    res.end(`${pending}</${root}>\n`);
  }

  #binary(
    res: ServerResponse,
    total: number,
    salt: number,
    type: string,
    name: string,
    fault: FaultKind | undefined,
    log: (s: number, f?: FaultKind) => void,
  ): void {
    if (fault === 'malformed') return send(res, 200, type, errorXml(EXPIRED, this.namespace), (s) => log(s, fault));
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': String(total),
      'Content-Disposition': `attachment; filename="${name}"`,
    });
    log(200, fault);
    const stopAt = fault === 'reset' || fault === 'truncate' ? Math.floor(total / 2) : Infinity;
    const chunks = binaryChunks(total, salt);
    let sent = 0;
    const pump = (): void => {
      // Manual iteration: leaving a for-of early would close the generator before 'drain' resumes it.
      for (let next = chunks.next(); !next.done; next = chunks.next()) {
        const c = next.value;
        if (sent + c.length > stopAt) {
          res.write(c.subarray(0, stopAt - sent));
          if (fault === 'reset') res.socket?.destroy();
          else res.socket?.end();
          return;
        }
        sent += c.length;
        if (!res.write(c)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (s += d));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, type: string, body: string, log: (status: number) => void): void {
  log(status);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

async function write(res: ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(text)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done).off('close', done);
        resolve();
      };
      res.once('drain', done).once('close', done);
    });
  }
  return !res.destroyed;
}
