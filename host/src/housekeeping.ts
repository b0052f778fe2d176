/**
 * What a data directory in use for years sheds: log files dated more than `logRemovalDays` ago and, once a day,
 * the settings database's ledger entries and runs older than `ledgerDays` / `runHistoryDays` (SettingsDb.prune).
 * The service calls it after every run and hourly; `ic schedule run` after its run, for an installation driven by
 * cron instead of the service. It never throws: a failure is a warning, and the next call tries again.
 */
import type { ApplicationSettings } from '@integration-client/schemas';
import type { App } from './app.js';
import { removeOldLogs } from './logs.js';

export async function keepHouse(app: App): Promise<void> {
  try {
    const stored = await app.db.application();
    let a: ApplicationSettings;
    try {
      a = app.validator.application(stored); // as changed since the process started, with the schema's defaults
    } catch {
      a = app.application; // stored by an older version with other rules: what the process opened with
    }
    const removed = removeOldLogs(app.logDir, a.logRemovalDays);
    if (removed.length) app.log.info({ removed, days: a.logRemovalDays }, 'removed old log files');
    if (a.ledgerDays === undefined || a.runHistoryDays === undefined) return;
    const pruned = await app.db.prune({ ledgerDays: a.ledgerDays, runHistoryDays: a.runHistoryDays });
    if (pruned)
      app.log.info(
        { ...pruned, ledgerDays: a.ledgerDays, runHistoryDays: a.runHistoryDays },
        `settings database pruned (once a day): ${pruned.delivered} ledger entries older than ${a.ledgerDays} days, ${pruned.runs} runs older than ${a.runHistoryDays} days`,
      );
  } catch (err) {
    app.log.warn({ err }, 'old log files, ledger entries or runs could not be removed; tried again later');
  }
}
