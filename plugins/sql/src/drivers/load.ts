import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * An engine's client package, loaded when a destination on that engine opens, not when the plugin is imported:
 * importing all four cost every plugin worker ~270 ms at start (mssql ~190, mysql2 ~70, pg ~50), and a
 * destination uses one. (All four are CommonJS, so this is synchronous and cached like an import.)
 */
export function load<T>(specifier: 'better-sqlite3' | 'pg' | 'pg-copy-streams' | 'mysql2/promise' | 'mssql'): T {
  return require(specifier) as T;
}
