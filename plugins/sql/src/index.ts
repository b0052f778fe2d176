/**
 * The SQL destination: session data (and system information) in the seed's tables on SQL Server, PostgreSQL,
 * MariaDB/MySQL or SQLite. Data path: item → rows.ts (model → checked rows) → group-commit.ts (concurrent
 * deliveries share a transaction) → session-store.ts (replace in place) → drivers/<engine>.ts.
 */
import { isAbsolute } from 'node:path';
import {
  checkResult,
  ConfigError,
  defineDestination,
  type CallOptions,
  type CheckStep,
  type Destination,
  MODEL_JSON,
  type PluginContext,
  type Session,
  type SessionDataItem,
  type SystemInformationItem,
} from '@integration-client/plugin-sdk';
import { parseConnectionString, type ParsedConnection } from './connection-string.js';
import { tablesNotReady, toDestinationError } from './db-errors.js';
import type { Driver } from './driver.js';
import { openDriver } from './drivers/index.js';
import { GroupCommit } from './group-commit.js';
import { sessionRows, type SessionRows } from './rows.js';
import { SessionStore, type MigrationOutcome, type WriteStatus } from './session-store.js';

export { parseConnectionString, sameDatabase, type Engine, type ParsedConnection } from './connection-string.js';
export { TABLES, MIGRATIONS_TABLE } from './schema.js';
export { DIALECTS, MIGRATIONS, migrationsTableDdl } from './dialects.js';
export { sessionRows, informationXml, hhmmss } from './rows.js';
export { SessionStore } from './session-store.js';
export { openDriver } from './drivers/index.js';
export type { Driver, Tx } from './driver.js';

/** An SQL destination's config, as validated by config.schema.json. */
export interface SqlConfig {
  readonly connectionString: string;
  readonly storeSystemInformation: boolean;
  readonly batchSize: number;
}

/** SQLite commits block the thread (fsync); gathering 20 ms of deliveries per transaction keeps them rare. */
const SQLITE_LINGER_MS = 20;

/**
 * A delivery waiting for its batch keeps only its model as it arrived: in a worker (the host's default) the JSON text
 * it crossed as — one flat string, which young-generation collections copy without tracing — or, in-process, the
 * model object. Its rows (~40 arrays of ~10 values for a session of 12 events) are built when its batch is written,
 * so they live for that transaction only, not while the delivery waits for one (ADR 011, stop 26, has what the
 * worker's collector does). A session whose rows cannot be built (bad text) fails alone, as before.
 */
interface Job {
  readonly kind: 'session' | 'system-information';
  readonly model: string | Session;
}

/** A written delivery: its status and where it is. */
interface Written {
  readonly status: WriteStatus;
  readonly location: string;
}

class SqlDestination implements Destination {
  #driver: Driver | undefined;
  #ready: Promise<MigrationOutcome> | undefined;
  #commits: GroupCommit<Job, Written> | undefined;

  constructor(
    private readonly ctx: PluginContext<SqlConfig>,
    private readonly conn: ParsedConnection,
  ) {}

  readonly handlers = {
    'session-data': (item: SessionDataItem, o: CallOptions) => this.#deliver(item, 'session', o),
    'system-information': (item: SystemInformationItem, o: CallOptions) =>
      this.ctx.config.storeSystemInformation
        ? this.#deliver(item, 'system-information', o)
        : Promise.resolve({ status: 'skipped' as const }),
  };

  #store: SessionStore | undefined;

  /** The driver, opened on first use. */
  get driver(): Driver {
    this.#driver ??= openDriver(this.conn, this.ctx.config.connectionString);
    return this.#driver;
  }

  /** Batches of concurrent deliveries, as many at once as the driver writes (opened on first use). */
  get commits(): GroupCommit<Job, Written> {
    this.#commits ??= new GroupCommit(
      (jobs) => this.#write(jobs),
      this.ctx.config.batchSize,
      this.conn.engine === 'sqlite' ? SQLITE_LINGER_MS : 0,
      this.driver.writers,
    );
    return this.#commits;
  }

  get store(): SessionStore {
    this.#store ??= new SessionStore(this.driver);
    return this.#store;
  }

  /** Creates or upgrades the schema once (again after a failure). */
  ready(): Promise<MigrationOutcome> {
    this.#ready ??= Promise.resolve()
      .then(() => this.store.migrate())
      .then(
        (m) => {
          if (m.from !== m.to)
            this.ctx.logger.info({ from: m.from, to: m.to, at: this.conn.location }, 'schema upgraded');
          return m;
        },
        (err: unknown) => {
          this.#ready = undefined;
          throw tablesNotReady(err, this.conn.location);
        },
      );
    return this.#ready;
  }

  async #deliver(item: SessionDataItem | SystemInformationItem, kind: Job['kind'], { signal }: CallOptions) {
    const text = (item as { [MODEL_JSON]?: unknown })[MODEL_JSON];
    await this.ready();
    return this.commits.submit({ kind, model: typeof text === 'string' ? text : item.session }, signal);
  }

  /** Builds each job's rows (a session that cannot be stored fails alone) and writes the others. */
  async #write(jobs: Job[]): Promise<(Written | Error)[]> {
    const out: (Written | Error)[] = [];
    const ok: { at: number; kind: Job['kind']; rows: SessionRows }[] = [];
    jobs.forEach((j, at) => {
      try {
        const session = typeof j.model === 'string' ? (JSON.parse(j.model) as Session) : j.model;
        ok.push({ at, kind: j.kind, rows: sessionRows(session, this.ctx.config.storeSystemInformation) });
      } catch (err) {
        out[at] = err instanceof Error ? err : new Error(String(err));
      }
    });
    if (!ok.length) return out;
    const store = this.store;
    const statuses: WriteStatus[] = [];
    try {
      if (ok.every((j) => j.kind === 'session')) statuses.push(...(await store.writeSessions(ok.map((j) => j.rows))));
      else
        for (const j of ok)
          statuses.push(
            j.kind === 'session'
              ? (await store.writeSessions([j.rows]))[0]!
              : await store.writeSystemInformation(j.rows),
          );
    } catch (err) {
      const what = ok.length === 1 ? `storing session ${ok[0]!.rows.lsid}` : `storing ${ok.length} sessions`;
      throw toDestinationError(err, what);
    }
    ok.forEach(({ at, rows }, i) => {
      out[at] = { status: statuses[i]!, location: `${this.conn.engine}:session/${rows.host}/${rows.lsid}` };
    });
    return out;
  }

  async check() {
    const steps: CheckStep[] = [];
    const step = async (name: string, ok: string, run: () => Promise<unknown>) => {
      if (steps.some((s) => !s.ok)) return;
      try {
        await run();
        steps.push({ name, ok: true, message: ok });
      } catch (err) {
        steps.push({ name, ok: false, message: toDestinationError(err, name).message });
      }
    };
    const where = this.conn.location;
    let outcome: MigrationOutcome | undefined;
    await step('connect', `connected to ${where}`, () => this.driver.tableNames());
    await step('tables', `tables present in ${where}`, async () => {
      outcome = await this.ready();
    });
    if (outcome) {
      const last = steps[steps.length - 1]!;
      steps[steps.length - 1] = {
        ...last,
        message:
          outcome.from === outcome.to
            ? `the tables are present (schema version ${outcome.to})`
            : `created/upgraded the tables (schema version ${outcome.from} → ${outcome.to})`,
      };
    }
    await step('create table', 'may create tables', () => this.store.probeCreate());
    await step('insert, select, update, delete', 'may insert, select, update and delete rows', () =>
      this.store.probeDml(),
    );
    return checkResult(steps);
  }

  async close(): Promise<void> {
    await this.#driver?.close();
  }
}

/**
 * A relative SQLite path is refused: each process would resolve it against its own working directory, so the
 * `ic destination add` that checked it and the service that writes (started elsewhere) would use different files.
 */
function absoluteSqlite(text: string, conn: ParsedConnection): ParsedConnection {
  const path = text.trim().slice('sqlite:'.length);
  if (conn.engine === 'sqlite' && !isAbsolute(path.replace(/^\/\/(?=\/)/, '')))
    throw new ConfigError(
      `connectionString sqlite:${path} is a relative path, which every process would resolve against its own working directory (the service's is not this shell's); give the absolute path, e.g. sqlite:${conn.file}`,
      { details: { errors: [{ path: '/connectionString', message: 'is a relative SQLite path' }] } },
    );
  return conn;
}

export default defineDestination<SqlConfig>({
  id: 'sql',
  create(ctx) {
    const text = ctx.config.connectionString;
    return new SqlDestination(ctx, absoluteSqlite(text, parseConnectionString(text)));
  },
});
