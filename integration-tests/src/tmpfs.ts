/** Real tmpfs mounts for tests of full, small or read-only file systems (root only: see `isRoot`). */
import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether this process may mount (the tests that need it are skipped otherwise). */
export const isRoot = process.getuid?.() === 0;

/** A tmpfs mounted with `options` at a fresh directory; `remount(o)` changes them; `done()` unmounts it. */
export async function tmpfs(options: string): Promise<{ dir: string; remount(o: string): void; done(): void }> {
  const dir = await mkdtemp(join(tmpdir(), 'ic-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  return {
    dir,
    remount: (o: string) => void execFileSync('mount', ['-o', `remount,${o}`, dir]),
    done: () => void execFileSync('umount', [dir]),
  };
}
