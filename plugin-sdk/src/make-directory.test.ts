import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirectory } from './make-directory.js';

describe('makeDirectory', () => {
  it('creates missing parents with the mode, and accepts a directory that is there', () => {
    const root = mkdtempSync(join(tmpdir(), 'ic-mkdir-'));
    const deep = join(root, 'a', 'b', 'c');
    makeDirectory(deep, 0o700);
    expect(statSync(deep).isDirectory()).toBe(true);
    expect(statSync(join(root, 'a')).mode & 0o777).toBe(0o700);
    makeDirectory(deep); // again: nothing to do
  });

  it('refuses a file in the way with EEXIST', () => {
    const root = mkdtempSync(join(tmpdir(), 'ic-mkdir-'));
    writeFileSync(join(root, 'file'), '');
    expect(() => makeDirectory(join(root, 'file'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => makeDirectory(join(root, 'file', 'sub'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });

  // Node's mkdir(…, { recursive: true }) never settles here (a loop at 100 % of a core): procfs answers ENOENT
  // for a directory whose parent exists. Not a timed test: it either answers or hangs until the test times out.
  it.runIf(existsSync('/proc/self'))('answers ENOENT where the file system will not create (procfs)', () => {
    expect(() => makeDirectory('/proc/ic-no-such-dir/sub')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => makeDirectory('/proc/ic-no-such-dir')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
