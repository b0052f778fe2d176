import type { ParsedConnection } from '../connection-string.js';
import type { Driver } from '../driver.js';
import { openMssql } from './mssql.js';
import { openMysql } from './mysql.js';
import { openPostgres } from './postgres.js';
import { openSqlite } from './sqlite.js';

/** Opens the driver for a parsed connection string (no connection is made until first use, except SQLite). */
export function openDriver(conn: ParsedConnection, connectionString: string): Driver {
  switch (conn.engine) {
    case 'sqlite':
      return openSqlite(conn.file!);
    case 'postgres':
      return openPostgres(connectionString);
    case 'mysql':
      return openMysql(conn);
    case 'mssql':
      return openMssql(conn);
  }
}
