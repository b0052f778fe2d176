import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Creates a directory and its missing parents, like `mkdir -p` — without Node's `{ recursive: true }`, which loops
 * for ever (100 % of a core, never settling) when the file system answers ENOENT for a directory whose parent exists:
 * procfs does (`/proc/anything`), and so may network and FUSE file systems that refuse to create there. Here such an
 * ENOENT is the answer: thrown as it is (`code: 'ENOENT'`), as are EEXIST for a path that is a file, EACCES, EROFS….
 *
 * Synchronous: a directory is created once per destination, data directory or log folder, not per item, and one
 * implementation serves the synchronous callers too.
 */
export function makeDirectory(path: string, mode?: number): void {
  const dir = resolve(path);
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && isDirectory(dir)) return; // there already (or made meanwhile by another caller)
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir || isDirectory(parent)) throw err;
    makeDirectory(parent, mode);
    makeDirectory(dir, mode);
  }
}

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};
