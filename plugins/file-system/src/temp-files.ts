import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** This process: pid plus start time, so a recycled pid after a restart is told apart. */
const OWNER = `${process.pid}-${Math.round(Date.now() - process.uptime() * 1000)}`;
const PATTERN = /^\.ic-tmp-(\d+)-(\d+)-[0-9a-f]+\.part$/;
/** A temporary file of another process still alive is only removed once it has not changed for this long. */
const STALE_MS = 60 * 60 * 1000;

/** A new temporary file name (hidden, in the destination directory so the final rename is atomic). */
export function tempName(): string {
  return `.ic-tmp-${OWNER}-${randomBytes(6).toString('hex')}.part`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files a crashed writer left in `dir`: those of a process that is gone, and those of any
 * other process untouched for an hour. Never touches files of this process or files not named like ours.
 * Returns the names removed.
 */
export async function cleanStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = PATTERN.exec(name);
    if (!m || `${m[1]}-${m[2]}` === OWNER) continue;
    const path = join(dir, name);
    const old = await stat(path).then(
      (s) => Date.now() - s.mtimeMs > STALE_MS,
      () => false,
    );
    if (!alive(Number(m[1])) || old) {
      await rm(path, { force: true });
      removed.push(name);
    }
  }
  return removed;
}
