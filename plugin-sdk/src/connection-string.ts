/**
 * Connection strings: which engine, how to connect, and a canonical "where" (engine, host, port, database or
 * file) without credentials, to tell whether two strings point at the same database. A connection string is a
 * secret: no message here ever contains it.
 */
import { resolve } from 'node:path';
import { ConfigError } from './errors/index.js';

export type Engine = 'mssql' | 'postgres' | 'mysql' | 'sqlite';

export interface ParsedConnection {
  readonly engine: Engine;
  /** For messages: `engine://host:port/database` (host as written) or `sqlite:/absolute/path`; no user or password. */
  readonly location: string;
  /**
   * The database's identity, to tell whether two strings point at the same one: `location` with the host
   * normalised (`localhost`, `127.x`, `::1`, `.` and `(local)` are one `loopback`) and the database lower-cased.
   */
  readonly key: string;
  /** For SQLite: the absolute file path. */
  readonly file?: string;
  /** For network engines: the parts. */
  readonly server?: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly user?: string;
    readonly password?: string;
    readonly options: Readonly<Record<string, string>>;
  };
}

const DEFAULT_PORTS: Record<Exclude<Engine, 'sqlite'>, number> = { mssql: 1433, postgres: 5432, mysql: 3306 };
const SCHEMES: Record<string, Exclude<Engine, 'sqlite'>> = {
  'mssql:': 'mssql',
  'sqlserver:': 'mssql',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
};

const FORMS =
  'use Server=…;Database=…;User Id=…;Password=… or mssql://, postgres://, mysql:// or mariadb:// URLs, or sqlite:<path>';

function invalid(what: string): ConfigError {
  return new ConfigError(`connectionString ${what}; ${FORMS}`, {
    details: { errors: [{ path: '/connectionString', message: what }] },
  });
}

/** The host part normalised so that `localhost`, `127.0.0.1` and `::1` compare equal. */
function canonicalHost(host: string): string {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || h.startsWith('127.') || h === '.' || h === '(local)' ? 'loopback' : h;
}

/** `location` (as the user wrote the host and database) and `key` (normalised, for comparing). */
function whereOf(engine: Engine, host: string, port: number, database: string): { location: string; key: string } {
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    location: `${engine}://${shown.toLowerCase()}:${port}/${database}`,
    key: `${engine}://${canonicalHost(host)}:${port}/${database.toLowerCase()}`,
  };
}

/** Parses a connection string; throws IC_ERR_CONFIG_INVALID (without echoing it) when it has no known form. */
export function parseConnectionString(text: string, cwd = process.cwd()): ParsedConnection {
  const s = text.trim();
  if (!s) throw invalid('is empty');
  if (/^sqlite:/i.test(s)) {
    const rest = s.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!rest || rest === ':memory:') throw invalid('names no SQLite file (sqlite:<path>)');
    const file = resolve(cwd, rest);
    return { engine: 'sqlite', file, location: `sqlite:${file}`, key: `sqlite:${file}` };
  }
  const scheme = /^([a-z]+:)\/\//i.exec(s)?.[1]?.toLowerCase();
  if (scheme) return parseUrl(s, scheme);
  if (/(^|;)\s*(server|data source|address|addr)\s*=/i.test(s)) return parseAdo(s);
  throw invalid('has no known form');
}

function parseUrl(s: string, scheme: string): ParsedConnection {
  const engine = SCHEMES[scheme];
  if (!engine) throw invalid(`has an unknown scheme ${JSON.stringify(scheme.slice(0, -1))}`);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw invalid('is not a valid URL');
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) throw invalid('names no database (the path after host:port)');
  const host = url.hostname || 'localhost';
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[engine];
  return {
    engine,
    ...whereOf(engine, host, port, database),
    server: {
      host: host.replace(/^\[|\]$/g, ''),
      port,
      database,
      user: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
      options: Object.fromEntries(url.searchParams),
    },
  };
}

/** `Server=host,port;Database=db;User Id=u;Password=p;Encrypt=true` (SQL Server's ADO.NET form). */
function parseAdo(s: string): ParsedConnection {
  const parts = new Map<string, string>();
  for (const piece of s.split(';')) {
    const eq = piece.indexOf('=');
    if (eq < 0) {
      if (piece.trim()) throw invalid('has a part without "="');
      continue;
    }
    parts.set(piece.slice(0, eq).trim().toLowerCase(), piece.slice(eq + 1).trim());
  }
  const pick = (...keys: string[]) => keys.map((k) => parts.get(k)).find((v) => v !== undefined && v !== '');
  const server = pick('server', 'data source', 'address', 'addr') ?? '';
  const database = pick('database', 'initial catalog');
  if (!database) throw invalid('names no Database (or Initial Catalog)');
  const raw = server.replace(/^tcp:/i, '');
  const [hostAndInstance = '', portText] = raw.split(',');
  const [host = '', instance] = hostAndInstance.split('\\');
  const port = portText ? Number(portText) : DEFAULT_PORTS.mssql;
  if (!host || !Number.isInteger(port) || port <= 0) throw invalid('has an unreadable Server (use host or host,port)');
  const options: Record<string, string> = {};
  for (const [k, v] of parts) {
    if (
      ![
        'server',
        'data source',
        'address',
        'addr',
        'database',
        'initial catalog',
        'user id',
        'uid',
        'user',
        'password',
        'pwd',
      ].includes(k)
    )
      options[k] = v;
  }
  if (instance) options.instancename = instance;
  return {
    engine: 'mssql',
    ...whereOf('mssql', instance ? `${host}\\${instance}` : host, port, database),
    server: { host, port, database, user: pick('user id', 'uid', 'user'), password: pick('password', 'pwd'), options },
  };
}

/** True when two connection strings point at the same database (credentials and options ignored). */
export function sameDatabase(a: string, b: string): boolean {
  return parseConnectionString(a).key === parseConnectionString(b).key;
}

/** The mssql (tedious) connection options for a parsed SQL Server connection string (`Encrypt` defaults on). */
export function mssqlConnectionConfig(conn: ParsedConnection) {
  const s = conn.server!;
  const o = s.options;
  const yes = (v: string | undefined, dflt: boolean) =>
    v === undefined ? dflt : /^(true|yes|1|strict|mandatory)$/i.test(v);
  return {
    server: s.host,
    port: o.instancename ? undefined : s.port,
    database: s.database,
    user: s.user,
    password: s.password,
    pool: { max: 2, min: 0 },
    connectionTimeout: 10_000,
    options: {
      encrypt: yes(o.encrypt, true),
      trustServerCertificate: yes(o.trustservercertificate, false),
      instanceName: o.instancename,
      useUTC: true,
    },
  };
}

/** What `pgTransaction` needs of a pg pool client (structural: the SDK does not depend on pg). */
export interface PgClientLike {
  query(sql: string): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'error', listener: (err: Error) => void): unknown;
  release(err?: Error): void;
}

/**
 * Runs `fn` in a PostgreSQL transaction on a client of `pool`: commit when it resolves, roll back when it
 * throws. A client that loses its server between queries emits 'error'; that is kept from going uncaught and the
 * client is released as broken, so the pool does not hand it out again.
 */
export async function pgTransaction<C extends PgClientLike, T>(
  pool: { connect(): Promise<C> },
  fn: (client: C) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  const lost = (e: unknown) => (broken = e);
  client.on('error', lost);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
    throw err;
  } finally {
    client.off('error', lost);
    client.release(broken as Error | undefined);
  }
}
