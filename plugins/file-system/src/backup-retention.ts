import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PluginLogger } from '@integration-client/plugin-sdk';

/** A backup this destination wrote, as it was when written. */
interface LedgerEntry {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

type Ledger = Record<string, LedgerEntry[]>;

/**
 * Retention Count for site backups. The destination records every backup it writes (per site, in landing order)
 * in a ledger in its private data directory; after a new backup lands, all but the newest `1 + retentionCount`
 * entries of that site are deleted — but only when the file is still exactly what was written (same size and
 * modification time), so nothing the plugin did not write, and nothing changed since, is ever removed.
 */
export class BackupRetention {
  readonly #file: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    dataDir: string,
    private readonly retentionCount: number | undefined,
    private readonly logger: PluginLogger,
  ) {
    this.#file = join(dataDir, 'file-system-backups.json');
  }

  /** Records a landed backup and prunes that site's older ones. Serialised: one update of the ledger at a time. */
  landed(siteHost: string, path: string): Promise<string[]> {
    const next = this.#queue.then(() => this.#landed(siteHost, path));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #landed(siteHost: string, path: string): Promise<string[]> {
    const ledger = await this.#read();
    const s = await stat(path);
    const entries = [
      ...(ledger[siteHost] ?? []).filter((e) => e.path !== path),
      { path, size: s.size, mtimeMs: s.mtimeMs },
    ];
    const deleted: string[] = [];
    if (this.retentionCount !== undefined && entries.length > this.retentionCount + 1) {
      const old = entries.splice(0, entries.length - (this.retentionCount + 1));
      for (const e of old) if (await this.#deleteIfUnchanged(e)) deleted.push(e.path);
    }
    ledger[siteHost] = entries;
    await this.#write(ledger);
    return deleted;
  }

  async #deleteIfUnchanged(e: LedgerEntry): Promise<boolean> {
    const now = await stat(e.path).catch(() => undefined);
    if (!now) return false;
    if (now.size !== e.size || now.mtimeMs !== e.mtimeMs) {
      this.logger.warn({ path: e.path }, 'backup changed since it was written; retention leaves it in place');
      return false;
    }
    await rm(e.path, { force: true });
    this.logger.info({ path: e.path }, 'old backup deleted by retention');
    return true;
  }

  async #read(): Promise<Ledger> {
    try {
      return JSON.parse(await readFile(this.#file, 'utf8')) as Ledger;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  }

  async #write(ledger: Ledger): Promise<void> {
    const tmp = `${this.#file}.tmp`;
    await writeFile(tmp, JSON.stringify(ledger, null, 1));
    await rename(tmp, this.#file);
  }
}
