import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DESTINATION_WIDE_CODES } from '@integration-client/plugin-sdk';
import { sampleStream } from '@integration-client/plugin-sdk/testing';
import { describe, expect, it } from 'vitest';
import { toDestinationError } from './fs-errors.js';
import { deliver, makeDestination, tempDir } from './test-helpers.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/**
 * Runs a delivery in a child process as the unprivileged `nobody` (root bypasses permission bits). The child loads
 * the plugin as root and drops to `nobody` only for the delivery, so the checkout may sit anywhere (a `mktemp -d`
 * clone is 0700, which `nobody` could not even read the plugin from).
 */
async function deliverAsNobody(dir: string): Promise<unknown> {
  const pluginDir = fileURLToPath(new URL('..', import.meta.url));
  const script = `
    import plugin from './dist/index.js';
    import { createFakeContext, sampleItem } from '@integration-client/plugin-sdk/testing';
    const ctx = createFakeContext({ config: { destinationDirectory: ${JSON.stringify(dir)}, createDirectory: true, downloadFormat: 'default', fileNameConflictHandling: 'AppendNumber' }, dataDir: '/tmp' });
    const dest = await plugin.create(ctx);
    process.setgid(${NOBODY}); process.setuid(${NOBODY});
    try { console.log(JSON.stringify(await dest.handlers['session-data'](sampleItem('session-data').item, { signal: new AbortController().signal }))); }
    catch (err) { console.log(JSON.stringify({ code: err.code, retryable: err.retryable, message: err.message })); }`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: pluginDir,
  });
  return JSON.parse(stdout) as unknown;
}

/** Runs `fn` on a real tmpfs mounted with `options` at a fresh directory (root only), unmounted afterwards. */
async function onTmpfs(options: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  try {
    await fn(dir);
  } finally {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

describe('File System plugin faults', () => {
  it('permission denied is coded, destination-wide and retried (the cursor stays), and nothing is acknowledged', async () => {
    const dir = await tempDir();
    const target = join(dir, 'locked');
    await mkdir(target);
    if (isRoot) {
      await chmod(dir, 0o755);
      await chmod(target, 0o755);
      expect(await deliverAsNobody(target)).toMatchObject({
        code: 'IC_ERR_DESTINATION_PERMISSION_DENIED',
        retryable: true,
      });
    } else {
      await chmod(target, 0o555);
      const { dest } = await makeDestination({ destinationDirectory: target });
      await expect(
        deliver(dest, {
          operation: 'session-recording',
          site: { host: 'h' },
          meta: { siteHost: 'h', lsid: 'x', extension: 'flv' },
          stream: sampleStream(10),
        }),
      ).rejects.toMatchObject({
        code: 'IC_ERR_DESTINATION_PERMISSION_DENIED',
        retryable: true,
      });
    }
    expect(await readdir(target)).toEqual([]);
  });

  it.runIf(isRoot)('a read-only file system is refused as permission denied, retried (real read-only tmpfs)', () =>
    onTmpfs('size=1m,ro', async (dir) => {
      const { dest } = await makeDestination({ destinationDirectory: dir });
      await expect(
        deliver(dest, {
          operation: 'session-recording',
          site: { host: 'h' },
          meta: { siteHost: 'h', lsid: 'ro', extension: 'flv', byteLength: 10 },
          stream: sampleStream(10),
        }),
      ).rejects.toMatchObject({
        code: 'IC_ERR_DESTINATION_PERMISSION_DENIED',
        retryable: true,
        details: { errno: 'EROFS' },
        message: expect.stringMatching(/read-only \(EROFS\); mount it read-write/),
      });
    }),
  );

  it.runIf(isRoot)('a full disk is destination-wide and retried, the partial file removed (real 1 MiB tmpfs)', () =>
    onTmpfs('size=1m', async (dir) => {
      const { dest } = await makeDestination({ destinationDirectory: dir });
      const item = {
        operation: 'session-recording' as const,
        site: { host: 'h' },
        meta: { siteHost: 'h', lsid: 'big', extension: 'flv', byteLength: 3_000_000 },
        stream: sampleStream(3_000_000),
      };
      await expect(deliver(dest, item)).rejects.toMatchObject({
        code: 'IC_ERR_DESTINATION_FULL',
        retryable: true,
        details: { errno: 'ENOSPC' },
      });
      expect(await readdir(dir)).toEqual([]);
      const small = { ...item, meta: { ...item.meta, lsid: 'small', byteLength: 1000 }, stream: sampleStream(1000) };
      expect(await deliver(dest, small)).toMatchObject({ status: 'written', bytes: 1000 });
      // The check says how much room there is, and that it is little (information: it still passes).
      const check = await dest.check();
      expect(check.ok).toBe(true);
      expect(check.steps.find((x) => x.name === 'free space')?.message).toMatch(
        /^0\.0 GiB free of 0\.0 GiB: little for recordings \(a full disk stops each transfer until there is room\)$/,
      );
    }),
  );

  // Error shapes as node:fs raises them; a disconnected share or a failing disk cannot be produced on this machine.
  it('maps each errno: the file system not answering is destination-wide too; a file too large is a bad item', () => {
    const cases: [string, string][] = [
      ['EACCES', 'IC_ERR_DESTINATION_PERMISSION_DENIED'],
      ['EROFS', 'IC_ERR_DESTINATION_PERMISSION_DENIED'],
      ['ENOSPC', 'IC_ERR_DESTINATION_FULL'],
      ['EDQUOT', 'IC_ERR_DESTINATION_FULL'],
      ['ENOTCONN', 'IC_ERR_DESTINATION_UNAVAILABLE'],
      ['ESTALE', 'IC_ERR_DESTINATION_UNAVAILABLE'],
      ['EIO', 'IC_ERR_DESTINATION_UNAVAILABLE'],
      ['EFBIG', 'IC_ERR_DESTINATION_BAD_ITEM'],
      ['EBUSY', 'IC_ERR_DESTINATION_WRITE_FAILED'],
    ];
    for (const [errno, code] of cases) {
      const e = toDestinationError(Object.assign(new Error(`${errno}: failed`), { code: errno }), '/mnt/a/x.flv');
      expect(e.code, errno).toBe(code);
      expect(DESTINATION_WIDE_CODES.has(e.code), errno).toBe(!/BAD_ITEM|WRITE_FAILED/.test(code));
      expect(e.message, errno).toContain('/mnt/a/x.flv');
    }
  });
});
