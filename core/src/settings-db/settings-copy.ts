/**
 * `ic settings migrate`: copies every table of one settings database into another (any engine to any engine),
 * in one transaction on the target, then checks the row counts. Sealed secrets are copied as they are: both
 * databases belong to the same data directory and its key. Leases are not copied (they belong to running
 * processes; the copy is refused while one is held).
 */
import { ConfigError } from '@integration-client/plugin-sdk';
import type { SettingsDb } from './settings-db.js';
import { META, pageSql, q, TABLES } from './settings-schema.js';
import type { Param, SqlConnection } from './sql-connection.js';

const PAGE = 5000;
/** Parameters per INSERT statement (SQL Server allows 2,100). */
const MAX_PARAMS = 900;

export interface CopyReport {
  readonly from: string;
  readonly to: string;
  /** Rows copied per table. */
  readonly rows: Record<string, number>;
}

const copied = TABLES.filter((t) => t.name !== 'lease');
/** Keys that belong to the database itself, not to the data directory. */
const OWN_META = ['schema_version'];

/** The rows of `table` that belong to the data directory (the marker table's own keys left out). */
const ours = (table: string): { where: string; params: string[] } =>
  table === META
    ? { where: ` WHERE "key" NOT IN (${OWN_META.map(() => '?').join(', ')})`, params: OWN_META }
    : { where: '', params: [] };

/** Rows in the tables that would be copied (the target must have none unless `replace`). */
async function rowCounts(sql: SqlConnection): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of copied) {
    const { where, params } = ours(t.name);
    const [row] = await sql.all<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${q(t.name)}${where}`, params);
    out[t.name] = Number(row?.n ?? 0);
  }
  return out;
}

export async function copySettings(
  from: SettingsDb,
  to: SettingsDb,
  options: { replace?: boolean; onTable?: (table: string, rows: number) => void } = {},
): Promise<CopyReport> {
  if (from.key === to.key)
    throw new ConfigError(`${to.location} is the settings database in use already; name another one`);
  const held = await from.leases();
  if (held.length)
    throw new ConfigError(
      `a schedule is running (${held.map((l) => l.name).join(', ')}); stop the service (\`ic service status\`) and wait for runs to end, then migrate`,
    );
  await from.flushDelivered();
  const src = from.sql;
  const before = await rowCounts(to.sql);
  const busy = Object.entries(before).filter(([, n]) => n > 0);
  if (busy.length && !options.replace)
    throw new ConfigError(
      `${to.location} already holds settings (${busy.map(([t, n]) => `${t}: ${n}`).join(', ')}); pass --replace to overwrite them`,
    );
  const expected = await rowCounts(src);
  await to.sql.transaction(async (tx) => {
    for (const t of [...copied].reverse()) {
      const { where, params } = ours(t.name);
      await tx.run(`DELETE FROM ${q(t.name)}${where}`, params);
    }
    for (const t of copied) {
      const cols = t.columns.map(([c]) => c);
      const order = (t.primaryKey ?? ['id']).map(q).join(', ');
      const identity = tx.dialect === 'mssql' && cols.includes('id');
      if (identity) await tx.run(`SET IDENTITY_INSERT ${q(t.name)} ON`);
      const perInsert = Math.max(1, Math.floor(MAX_PARAMS / cols.length));
      let n = 0;
      for (let offset = 0; ; offset += PAGE) {
        const page = await src.all(
          `SELECT ${cols.map(q).join(', ')} FROM ${q(t.name)} ORDER BY ${order} ${pageSql(src.dialect, PAGE, offset)}`,
        );
        const rows = page
          .map((r) => cols.map((c) => (r[c] ?? null) as Param))
          .filter((r) => !(t.name === META && OWN_META.includes(String(r[0]))));
        for (let at = 0; at < rows.length; at += perInsert) {
          const part = rows.slice(at, at + perInsert);
          const tuple = `(${cols.map(() => '?').join(', ')})`;
          await tx.run(
            `INSERT INTO ${q(t.name)} (${cols.map(q).join(', ')}) VALUES ${part.map(() => tuple).join(', ')}`,
            part.flat(),
          );
        }
        n += rows.length;
        if (page.length < PAGE) break;
      }
      if (identity) await tx.run(`SET IDENTITY_INSERT ${q(t.name)} OFF`);
      if (tx.dialect === 'postgres' && cols.includes('id'))
        await tx.run(
          `SELECT setval(pg_get_serial_sequence('${q(t.name)}', 'id'), (SELECT COALESCE(MAX(${q('id')}), 0) + 1 FROM ${q(t.name)}), false)`,
        );
      options.onTable?.(t.name, n);
    }
    const after = await rowCounts(tx);
    for (const [table, n] of Object.entries(expected))
      if (after[table] !== n)
        throw new ConfigError(
          `the copy of table ${table} has ${after[table]} rows instead of ${n}; nothing was switched, the target was left as it was`,
        );
  });
  return { from: from.location, to: to.location, rows: expected };
}
