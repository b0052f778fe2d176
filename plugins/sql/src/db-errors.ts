/**
 * Database failures → coded errors. What holds for the whole database gets a destination-wide code (retried on the
 * next run; the kernel stops the transfer at the first): cannot be reached or not on the server
 * (IC_ERR_DESTINATION_UNAVAILABLE), read-only or refused for lack of rights (…_PERMISSION_DENIED), no space left
 * (…_FULL). Values the database rejects make a bad item (…_BAD_ITEM); anything else — deadlocks, timeouts — is a
 * retryable write failure. Messages never contain the connection string.
 */
import { DESTINATION_WIDE_CODES, DestinationError, isIcError, type IcErrorLike } from '@integration-client/plugin-sdk';

interface DbError {
  code?: string | number;
  errno?: number;
  number?: number;
  message?: string;
  originalError?: DbError;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ESOCKET',
  'ECONNCLOSED',
  'ETIMEOUT',
  'ELOGIN_TIMEOUT',
  '57P01', // admin_shutdown
  '57P02',
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  'SQLITE_CANTOPEN',
]);
/**
 * What holds for the whole database, or for one value, by the code each driver raises (PostgreSQL SQLSTATE,
 * MariaDB/MySQL and SQLite names) or SQL Server's error number; the first rule that matches wins.
 */
type DestinationCode = ConstructorParameters<typeof DestinationError>[0];
interface Rule {
  readonly codes: ReadonlySet<string>;
  readonly mssql: ReadonlySet<number>;
  /** Codes of another form that match too. */
  readonly also?: (code: string) => boolean;
  readonly code: DestinationCode;
  /** The message after `<action>: `, from the driver's first line of text. */
  readonly say: (text: string) => string;
}
const RULES: readonly Rule[] = [
  {
    // The database named in the connection string is not on the server (dropped, renamed, not restored yet).
    codes: new Set(['3D000' /* invalid_catalog_name */, 'ER_BAD_DB_ERROR']),
    mssql: new Set([4060, 911]), // cannot open the database requested by the login; does not exist
    code: 'IC_ERR_DESTINATION_UNAVAILABLE',
    say: (text) =>
      `the database is not on the server (${text}); create it (or restore it), or correct the database in the connection string; nothing was acknowledged, the next run tries again`,
  },
  {
    // The database takes no writes at all: a standby / read-only replica, or set read-only.
    codes: new Set([
      '25006', // read_only_sql_transaction (a hot standby, default_transaction_read_only)
      'ER_OPTION_PREVENTS_STATEMENT', // --read-only
      'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION',
    ]),
    mssql: new Set([3906]), // the database is read-only
    code: 'IC_ERR_DESTINATION_PERMISSION_DENIED',
    say: (text) =>
      `the database takes no writes (${text}); connect to the primary, not a standby or read-only replica, or make it writable again`,
  },
  {
    codes: new Set([
      '42501', // insufficient_privilege
      '28000', // invalid_authorization_specification
      '28P01', // invalid_password
      'ER_TABLEACCESS_DENIED_ERROR',
      'ER_DBACCESS_DENIED_ERROR',
      'ER_ACCESS_DENIED_ERROR',
      'ER_SPECIFIC_ACCESS_DENIED_ERROR',
      'ELOGIN',
      'SQLITE_READONLY',
      'SQLITE_AUTH',
      'SQLITE_PERM',
    ]),
    mssql: new Set([229, 230, 262, 297, 300, 916, 18456]),
    code: 'IC_ERR_DESTINATION_PERMISSION_DENIED',
    say: (text) =>
      `the database refused (${text}); give the connection's user the rights listed in the SQL plugin README`,
  },
  {
    codes: new Set(['53100' /* disk_full */, 'ER_RECORD_FILE_FULL', 'ER_DISK_FULL', 'SQLITE_FULL']),
    mssql: new Set([1105, 9002]), // filegroup full, transaction log full
    code: 'IC_ERR_DESTINATION_FULL',
    say: (text) =>
      `the database has no space left (${text}); free space on its disk (or grow its files) and the next run goes on`,
  },
  {
    codes: new Set([
      'ER_DATA_TOO_LONG',
      'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD',
      'ER_WARN_DATA_OUT_OF_RANGE',
      'ER_TRUNCATED_WRONG_VALUE',
      'ER_BAD_NULL_ERROR',
      'SQLITE_CONSTRAINT_NOTNULL',
      'SQLITE_TOOBIG',
      'SQLITE_MISMATCH',
    ]),
    mssql: new Set([8152, 2628, 245, 515, 547, 241, 242]),
    also: (code) => code.startsWith('22'), // PostgreSQL's class 22, data exception
    code: 'IC_ERR_DESTINATION_BAD_ITEM',
    say: (text) => `the database rejected a value (${text})`,
  },
];

/** True for failures that mean "the database cannot be reached right now". */
export function isConnectionFailure(err: unknown): boolean {
  const e = (err ?? {}) as DbError;
  const code = String(e.code ?? e.originalError?.code ?? '');
  return (
    CONNECTION_CODES.has(code) ||
    code.startsWith('08') ||
    /Connection terminated|connection is closed|Client has encountered a connection error|not queryable/i.test(
      e.message ?? '',
    )
  );
}

/** Maps a database failure while doing `action` to a coded error. */
export function toDestinationError(err: unknown, action: string): IcErrorLike & Error {
  if (isIcError(err)) return err;
  const e = (err ?? {}) as DbError;
  const code = String(e.code ?? e.originalError?.code ?? '');
  const num = e.number ?? e.originalError?.number;
  const text = (e.message ?? String(err)).split('\n')[0] ?? '';
  const details = code ? { dbCode: code } : num ? { dbCode: String(num) } : undefined;
  if (isConnectionFailure(err))
    return new DestinationError(
      'IC_ERR_DESTINATION_UNAVAILABLE',
      `${action}: the database cannot be reached (${code || text}); nothing was acknowledged, it is retried`,
      { cause: err, details },
    );
  const rule = RULES.find((r) => r.codes.has(code) || (num !== undefined && r.mssql.has(num)) || r.also?.(code));
  if (rule) return new DestinationError(rule.code, `${action}: ${rule.say(text)}`, { cause: err, details });
  return new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', `${action} failed: ${text}; it is retried`, {
    cause: err,
    details,
  });
}

/**
 * A failure to prepare the tables (create or upgrade the schema): nothing can be stored until that works, so what the
 * database answered holds for the whole destination whatever it was — one error that stops the transfer, not one per
 * session.
 */
export function tablesNotReady(err: unknown, location: string): IcErrorLike & Error {
  const e = toDestinationError(err, `preparing the tables in ${location}`);
  // Kept as they are: what is destination-wide already, and what our own code said (e.g. a config error).
  if (DESTINATION_WIDE_CODES.has(e.code) || isIcError(err)) return e;
  return new DestinationError(
    'IC_ERR_DESTINATION_UNAVAILABLE',
    `${e.message}; nothing is stored until they are ready`,
    {
      cause: e,
      details: e.details,
    },
  );
}
