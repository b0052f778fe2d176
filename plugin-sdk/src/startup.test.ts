import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SDK = new URL('../dist/index.js', import.meta.url).href;
const PKG_DIR = fileURLToPath(new URL('..', import.meta.url));

/** Runs an ES module in a fresh Node process; returns what it printed. */
function run(code: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: PKG_DIR }).toString().trim();
}

const LOADED = `const loaded = () => [...new Set(Object.keys(createRequire(import.meta.url).cache)
  .map((p) => /node_modules\\/(ajv|ajv-formats|semver)\\//.exec(p)?.[1]).filter(Boolean))].sort().join(',');`;

describe('importing the SDK', () => {
  it('loads ajv and semver only when something validates or checks a range (each costs every importer start-up time)', () => {
    const out = run(`
      import { createRequire } from 'node:module';
      ${LOADED}
      const sdk = await import(${JSON.stringify(SDK)});
      const before = loaded();
      sdk.createAjv();
      const afterAjv = loaded();
      sdk.checkHostRange({ id: 'x', host: '>=0.1.0' }, '0.1.0', 'x');
      console.log(JSON.stringify([before, afterAjv, loaded()]));`);
    expect(JSON.parse(out)).toEqual(['', 'ajv,ajv-formats', 'ajv,ajv-formats,semver']);
  });

  it('the lazily loaded functions behave as before', () => {
    const out = run(`
      const sdk = await import(${JSON.stringify(SDK)});
      const v = sdk.createAjv().compile({ type: 'object', properties: { at: { type: 'string', format: 'date-time' } } });
      const codes = [];
      for (const host of ['>=9.0.0', 'not a range']) {
        try { sdk.checkHostRange({ id: 'x', host }, '0.1.0', 'x'); } catch (e) { codes.push(e.code); }
      }
      console.log(JSON.stringify([v({ at: '2024-12-01T00:00:00Z' }), v({ at: 'yesterday' }), codes]));`);
    expect(JSON.parse(out)).toEqual([true, false, ['IC_ERR_PLUGIN_HOST_RANGE', 'IC_ERR_PLUGIN_MANIFEST_INVALID']]);
  });
});
