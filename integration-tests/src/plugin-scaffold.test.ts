/**
 * `ic plugin new` writes a package that passes its own tests and the conformance suite as generated; the
 * example jsonl plugin (built from that scaffold) passes its own tests.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runIc } from './ic-helpers.js';
import { REPO_ROOT } from './paths.js';

const run = promisify(execFile);
// Inside the repository, so the scaffold's `@integration-client/plugin-sdk` resolves to the workspace copy.
const scratch = await mkdtemp(join(REPO_ROOT, 'integration-tests/.scaffold-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('ic plugin new', () => {
  it('scaffolds a plugin that passes its own tests and `ic plugin check`', async () => {
    const dir = join(scratch, 'archive-dest');
    const r = await runIc(scratch, [
      'plugin',
      'new',
      'archive-dest',
      '--dir',
      dir,
      '--display-name',
      'Archive',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      dir,
      files: ['package.json', 'config.schema.json', 'index.js', 'test/plugin.test.js', 'README.md', '.gitignore'],
      // A host run from this checkout: its SDK is not on a registry, so the package links the checkout's.
      install: `npm link ${join(REPO_ROOT, 'plugin-sdk')}`,
    });
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >;
    expect(pkg.name).toBe('ic-plugin-archive-dest');
    expect(pkg.integrationClient).toMatchObject({
      id: 'archive-dest',
      displayName: 'Archive',
      operations: ['session-data'],
    });
    const tests = await run(process.execPath, ['--test'], { cwd: dir });
    expect(tests.stdout).toMatch(/# pass 2\n# fail 0/);
    const check = await runIc(scratch, [
      'plugin',
      'check',
      dir,
      '--config',
      JSON.stringify({ directory: join(scratch, 'out') }),
    ]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('archive-dest conforms.');
  }, 60_000);

  it('refuses a bad id and an existing package folder (exit 2, coded)', async () => {
    const bad = await runIc(scratch, ['plugin', 'new', 'Bad_Id', '--dir', join(scratch, 'x')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('IC_ERR_CONFIG_INVALID');
    expect(bad.stderr).toContain('kebab-case');
    const again = await runIc(scratch, ['plugin', 'new', 'archive-dest', '--dir', join(scratch, 'archive-dest')]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already holds a package.json');
  });

  it('a plugin scaffolded outside the checkout installs offline: the host run from the checkout gives it its SDK', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'ic-outside-'));
    try {
      const home = join(outside, 'home');
      expect((await runIc(home, ['init'])).code).toBe(0);
      const dir = join(outside, 'ic-plugin-outside');
      expect((await runIc(home, ['plugin', 'new', 'outside', '--dir', dir])).code).toBe(0);
      // No registry given: the SDK is not on the public one, so npm would answer 404 for ^0.1.0.
      const installed = await runIc(home, ['plugin', 'install', dir, '--json']);
      expect(installed.code, installed.stderr).toBe(0);
      expect(JSON.parse(installed.stdout)).toMatchObject({ id: 'outside', version: '0.1.0' });
      const project = JSON.parse(await readFile(join(home, 'plugins', 'package.json'), 'utf8')) as {
        overrides?: Record<string, string>;
      };
      expect(project.overrides).toEqual({ '@integration-client/plugin-sdk': `file:${join(REPO_ROOT, 'plugin-sdk')}` });
      const listed = JSON.parse((await runIc(home, ['plugin', 'list', '--json'])).stdout) as {
        id: string;
        status: string;
      }[];
      expect(listed.find((p) => p.id === 'outside')).toMatchObject({ status: 'ok' });
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  }, 120_000);

  it('the example jsonl plugin, built from the scaffold, passes its own tests', async () => {
    const tests = await run(process.execPath, ['--test'], { cwd: join(REPO_ROOT, 'integration-tests/examples/jsonl') });
    expect(tests.stdout).toMatch(/# pass 4\n# fail 0/);
  }, 60_000);
});
