import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixture, IC_BIN } from './paths.js';

const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [IC_BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describe('ic plugin check (built binary)', () => {
  it('exits 0 and reports conformance for a good plugin', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'ic-cli-')), 'out.jsonl');
    const r = await run('plugin', 'check', fixture('good-plugin'), '--config', JSON.stringify({ file }));
    expect(r.stdout).toContain('good-plugin conforms.');
    expect(r.code).toBe(0);
  });

  it('exits 1 with the failing code as JSON for a bad plugin', async () => {
    const r = await run('plugin', 'check', fixture('host-range-mismatch'), '--config', '{}', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, codes: ['IC_ERR_PLUGIN_HOST_RANGE'] });
  });

  it('exits 2 on bad usage and on an unreadable config', async () => {
    const usage = await run('plugin', 'check', fixture('good-plugin'));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(
      /required option '-c, --config <json\|file>' not specified[\s\S]*Usage: ic plugin check/,
    );
    // With --json, one JSON error line, as for any other error (no help text around it)
    for (const args of [
      ['plugin', 'check', fixture('good-plugin')],
      ['schedule', 'list', '--bogus'],
    ]) {
      const r = await run(...args, '--json');
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(JSON.parse(r.stderr)).toMatchObject({ error: { code: 'IC_ERR_USAGE', retryable: false } });
    }
    const r = await run('plugin', 'check', fixture('good-plugin'), '--config', '/nonexistent.json');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('IC_ERR_CONFIG_INVALID');
  });

  it('prints help with an example and its version', async () => {
    expect((await run('plugin', 'check', '--help')).stdout).toContain('Example:');
    expect((await run('--version')).stdout.trim()).toBe('0.1.0');
  });
});
