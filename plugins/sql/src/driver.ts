/**
 * What the store needs from an engine. One implementation per engine in drivers/; the store, the schema and
 * every test above this line are shared, so SQL Server runs the same repository code as the engines tested live.
 */
import type { Engine } from './connection-string.js';
import type { Dialect } from './dialects.js';
import type { Row, Value } from './rows.js';
import type { TableName } from './schema.js';

export type ResultRow = Record<string, unknown>;

/** Work inside one transaction. */
export interface Tx {
  /** Runs one statement with the dialect's parameter markers; returns the rows it selected. */
  query(sql: string, params?: readonly Value[]): Promise<ResultRow[]>;
  /**
   * Inserts rows (columns = schema.insertColumns(table), ids assigned by the database). With `wantIds`, resolves
   * to the new ids in the order of `rows`.
   */
  insert(table: TableName, rows: readonly Row[], wantIds: boolean): Promise<number[]>;
  /** Serialises schema migrations between processes until the transaction ends. */
  lockForMigration(): Promise<void>;
}

export interface Driver {
  readonly engine: Engine;
  readonly dialect: Dialect;
  /**
   * Transactions the driver runs at once (each on its own connection); further ones wait. The store's batches use
   * them all (group-commit.ts).
   */
  readonly writers: number;
  /** Runs `fn` in a transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Names of the tables in the database's default schema, lower-case. */
  tableNames(): Promise<Set<string>>;
  close(): Promise<void>;
}
