/**
 * SQL Server cannot run here, so the settings repository's T-SQL is checked two ways: every statement it sends
 * (through a RECORDING CONNECTION — a mock standing in for SQL Server) is parsed by node-sql-parser's T-SQL
 * grammar, and each statement's markers match its parameters. SQLite and PostgreSQL run the same repository live
 * in integration-tests/src/settings-db.test.ts.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkg from 'node-sql-parser';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../secrets/secret-box.js';
import { copySettings } from './settings-copy.js';
import { SettingsDb } from './settings-db.js';
import { pageSql, upsertSql } from './settings-schema.js';
import { mssqlMarkers, postgresMarkers, type Param, type SqlConnection, type SqlRow } from './sql-connection.js';

const { Parser } = pkg;
const tsql = new Parser();
const box = SecretBox.withKey(Buffer.alloc(32, 3));

/** A mock SQL Server connection: records statements, answers with empty results (and an id for inserts). */
function recordingMssql(): { sql: SqlConnection; sent: { sql: string; params: readonly Param[] }[] } {
  const sent: { sql: string; params: readonly Param[] }[] = [];
  const answer = (text: string): SqlRow[] =>
    /SCOPE_IDENTITY/.test(text) ? [{ id: '41' }] : /COUNT\(\*\) AS n\b/.test(text) ? [{ n: 0 }] : [];
  const sql: SqlConnection = {
    dialect: 'mssql',
    location: 'mssql://recording:1433/settings',
    key: 'mssql://recording:1433/settings',
    all: <T>(text: string, params: readonly Param[] = []) => {
      sent.push({ sql: text, params });
      return Promise.resolve(answer(text) as T[]);
    },
    run: (text, params = []) => {
      sent.push({ sql: text, params });
      return Promise.resolve(1);
    },
    transaction: (fn) => fn(sql),
    close: () => Promise.resolve(),
  };
  return { sql, sent };
}

/**
 * Parses one T-SQL batch. The grammar (node-sql-parser 5.4, `transactsql`) has no rule for `IF <cond> <stmt>`,
 * a bare `COMMIT` or `SET IDENTITY_INSERT`; those exact forms are matched here and the statement inside the IF
 * is parsed.
 */
function parseTsql(batch: string): void {
  for (const part of batch.split('; ')) {
    if (part === 'COMMIT' || /^SET IDENTITY_INSERT "\w+" (ON|OFF)$/.test(part)) continue;
    const inner = part.replace(/^IF @@ROWCOUNT = 0 (?=INSERT )/, '');
    tsql.astify(inner, { database: 'transactsql' });
  }
}

describe('settings database on SQL Server (recording connection; no server here)', () => {
  it('sends only statements the T-SQL grammar parses, with one parameter per marker', async () => {
    const { sql, sent } = recordingMssql();
    const db = await SettingsDb.on(sql, box);
    await db.putApplication({ logRemovalDays: 3 });
    await db.putSite({ name: 'm', host: 'h', clientId: 'c', clientSecret: 's' });
    await db.sites();
    await db.putDestination({ name: 'd', plugin: 'sql', config: { a: 1 } }, []);
    await db.destinations();
    await db.removeDestination('d');
    await db.putSchedule({ name: 's', period: '1h', enabled: true, transfers: [] });
    await db.schedules();
    await db.removeSchedule('s');
    await db.removeSite('m');
    db.markDelivered('d', 'item-1', 'loc');
    db.markDelivered('d', 'item-2');
    await db.setCursor('t', 'session-data', 5);
    await db.cursor('t', 'session-data');
    await db.cursors();
    await db.wasDelivered('d', 'item-3');
    await db.deliveredCount('d');
    const run = await db.startRun('s');
    expect(run).toBe(41);
    await db.finishRun(run, 'succeeded', {});
    await db.closeAbandonedRuns('s');
    await db.runs('s', 5);
    await db.runs();
    await db.tryLease('l', 'A', 60);
    await db.leases();
    await db.releaseLease('l', 'A');
    await db.recordFailure(run, 'd', 'i', 'IC_ERR_X', 'm');
    await db.failures();
    await db.failedItems();
    await db.failedItems({ destination: 'd', limit: 5 });
    await db.failedItemCounts();
    await db.dropFailedItems([{ destination: 'd', item: 'i' }]);
    await db.noteRetryable('d', 'i');
    await db.forgetRetrying('d', 'i');
    await db.retryingItems();
    await db.retryingItems({ destination: 'd' });
    await db.retryingCounts();
    await db.prune({ ledgerDays: 120, runHistoryDays: 365 });
    await db.holdings();

    // A copy from a real SQLite settings database into the recording one: every statement of the copy is sent,
    // and since the recorder counts 0 rows afterwards, the verification refuses to call it done.
    const source = await SettingsDb.open(`sqlite:${join(await mkdtemp(join(tmpdir(), 'ic-tsql-')), 's.db')}`, box);
    await source.putSite({ name: 'm', host: 'h', clientId: 'c', clientSecret: 's' });
    const r = await source.startRun('s');
    await source.recordFailure(r, 'd', 'i', 'IC_ERR_X', 'm');
    await expect(copySettings(source, db)).rejects.toThrow(/has 0 rows instead of 1; nothing was switched/);
    await source.close();

    const statements = new Set(sent.map((s) => s.sql));
    expect(statements.size).toBeGreaterThan(40);
    for (const s of sent) {
      expect(s.sql.split('?').length - 1, s.sql).toBe(s.params.length);
      expect(() => parseTsql(mssqlMarkers(s.sql)), s.sql).not.toThrow();
    }
    for (const must of [
      'SET IDENTITY_INSERT "run" ON',
      'CREATE TABLE "lease"',
      'CREATE TABLE "retrying"',
      'ALTER TABLE "retrying" ADD "code" NVARCHAR(200)',
      'sp_getapplock',
      'WITH (UPDLOCK',
    ])
      expect(
        [...statements].some((s) => s.includes(must)),
        must,
      ).toBe(true);
  });

  it("lines SQL Server's upsert parameters up with its markers", () => {
    const { sql, params } = upsertSql('mssql', 'cursor', ['transfer', 'data_type'], {
      transfer: 't',
      data_type: 'session-data',
      position: 9,
      updated_at: 'now',
    });
    const marked = mssqlMarkers(sql);
    const value = (col: string, from: number) => {
      const m = new RegExp(`"${col}" = @p(\\d+)`).exec(marked.slice(from));
      return params[Number(m![1])];
    };
    const where = marked.indexOf('WHERE');
    expect([value('position', 0), value('updated_at', 0)]).toEqual([9, 'now']);
    expect([value('transfer', where), value('data_type', where)]).toEqual(['t', 'session-data']);
    const insert = /VALUES \((@p\d+), (@p\d+), (@p\d+), (@p\d+)\)/.exec(marked)!;
    expect(insert.slice(1).map((p) => params[Number(p.slice(2))])).toEqual(['t', 'session-data', 9, 'now']);
  });

  it('writes markers and pages per engine', () => {
    expect(postgresMarkers('a = ? AND b = ?')).toBe('a = $1 AND b = $2');
    expect(mssqlMarkers('a = ? AND b = ?')).toBe('a = @p0 AND b = @p1');
    expect(pageSql('mssql', 10, 20)).toBe('OFFSET 20 ROWS FETCH NEXT 10 ROWS ONLY');
    expect(pageSql('postgres', 10)).toBe('LIMIT 10 OFFSET 0');
    expect(() => pageSql('sqlite', 1.5)).toThrow(RangeError);
  });
});
