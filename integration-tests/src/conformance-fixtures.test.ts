import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@integration-client/plugin-sdk/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './paths.js';

let outDir: string;
beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'ic-conformance-'));
});

describe('the SDK conformance suite', () => {
  it('passes a plugin built only against the SDK and leaves its output on disk', async () => {
    const file = join(outDir, 'sessions.jsonl');
    const report = await runConformance({ packageDir: fixture('good-plugin'), config: { file } });
    expect(report.codes).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.pluginId).toBe('good-plugin');
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'session-data: delivers a sample and acknowledges it',
        'session-recording: a failing stream is rejected with a coded error',
        'site-backup: delivers a sample and acknowledges it',
        'close() resolves',
      ]),
    );
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      lsid: 'c69a8e10bea9428f816cfababe9815fe',
      supportSiteHost: 'support.example.com',
    });
    const files = await readdir(outDir);
    expect(files.sort()).toEqual([
      'c69a8e10bea9428f816cfababe9815fe.flv',
      'sessions.jsonl',
      'support.example.com-backup.nsb',
    ]);
  });

  it.each([
    ['broken-plugin', 'IC_ERR_PLUGIN_LOAD_FAILED'],
    ['missing-operation', 'IC_ERR_PLUGIN_OPERATION_MISSING'],
    ['host-range-mismatch', 'IC_ERR_PLUGIN_HOST_RANGE'],
    ['invalid-schema', 'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID'],
  ])('fails %s with %s', async (name, code) => {
    const report = await runConformance({ packageDir: fixture(name), config: { file: join(outDir, `${name}.jsonl`) } });
    expect(report.ok).toBe(false);
    expect(report.codes[0]).toBe(code);
  });

  it('fails a config that does not match the plugin schema, naming the field', async () => {
    const report = await runConformance({ packageDir: fixture('good-plugin'), config: { file: 42 } });
    expect(report.codes).toEqual(['IC_ERR_CONFIG_INVALID']);
    expect(report.checks.at(-1)?.message).toContain('/file: must be string');
  });

  it('fails a directory that is not a plugin package', async () => {
    const report = await runConformance({ packageDir: outDir, config: {} });
    expect(report.codes).toEqual(['IC_ERR_PLUGIN_PACKAGE_UNREADABLE']);
  });
});
