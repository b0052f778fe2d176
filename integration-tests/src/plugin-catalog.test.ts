/**
 * The plugin catalog: bundled and installed packages are read the same way, with no plugin code run; a package
 * that fails a check is listed as failed with its code and skipped, the others stay usable.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginCatalog } from '@integration-client/core';
import { afterAll, describe, expect, it } from 'vitest';
import { fixture, REPO_ROOT } from './paths.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A plugins project with these fixture packages installed (copied into node_modules, listed as dependencies). */
async function project(fixtures: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ic-catalog-'));
  dirs.push(dir);
  for (const [name, source] of Object.entries(fixtures)) {
    await mkdir(join(dir, 'node_modules', name), { recursive: true });
    await cp(source, join(dir, 'node_modules', name), { recursive: true });
  }
  const dependencies = Object.fromEntries(Object.keys(fixtures).map((n) => [n, '1.0.0']));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'p', private: true, dependencies }));
  return dir;
}

describe('plugin catalog', () => {
  it('lists bundled then installed plugins; failed ones carry their code and are skipped, the rest load', async () => {
    const pluginsDir = await project({
      '@integration-client-fixtures/good-plugin': fixture('good-plugin'),
      '@integration-client-fixtures/host-range-mismatch': fixture('host-range-mismatch'),
      '@integration-client-fixtures/invalid-manifest': fixture('invalid-manifest'),
      'ic-plugin-shadow': join(REPO_ROOT, 'plugins/sql'), // a second package claiming the id "sql"
    });
    const catalog = new PluginCatalog({
      bundledDirs: [join(REPO_ROOT, 'plugins/sql')],
      pluginsDir,
      hostVersion: '0.1.0',
    });
    const list = await catalog.list();
    expect(list.map((e) => [e.name, e.source, e.error?.code ?? 'ok'])).toEqual([
      ['@integration-client/plugin-sql', 'bundled', 'ok'],
      ['@integration-client-fixtures/good-plugin', 'installed', 'ok'],
      ['@integration-client-fixtures/host-range-mismatch', 'installed', 'IC_ERR_PLUGIN_HOST_RANGE'],
      ['@integration-client-fixtures/invalid-manifest', 'installed', 'IC_ERR_PLUGIN_MANIFEST_INVALID'],
      ['@integration-client/plugin-sql', 'installed', 'IC_ERR_PLUGIN_ID_TAKEN'],
    ]);
    expect(list[2]!.error!.message).toContain('@integration-client-fixtures/host-range-mismatch');
    expect((await catalog.get('good-plugin')).manifest.operations).toContain('session-data');
    expect((await catalog.get('sql')).dir).toBe(join(REPO_ROOT, 'plugins/sql'));
    await expect(catalog.get('host-range-mismatch')).rejects.toMatchObject({ code: 'IC_ERR_PLUGIN_HOST_RANGE' });
    await expect(catalog.get('nope')).rejects.toMatchObject({ code: 'IC_ERR_NOT_FOUND' });
  });

  it('an empty data directory has only the bundled plugins', async () => {
    const catalog = new PluginCatalog({
      bundledDirs: [join(REPO_ROOT, 'plugins/file-system')],
      pluginsDir: join(tmpdir(), 'ic-no-such-plugins-dir'),
      hostVersion: '0.1.0',
    });
    expect((await catalog.list()).map((e) => e.id)).toEqual(['file-system']);
  });
});
