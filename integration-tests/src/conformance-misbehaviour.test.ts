import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runConformance } from '@integration-client/plugin-sdk/testing';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Plugins that load fine but break the handler contract. Each is written to a temporary package next to the
 * fixtures (so it resolves the workspace SDK) with one handler body swapped in.
 */
const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

async function pluginWith(handler: string, operations = ['session-recording']): Promise<string> {
  const dir = await mkdtemp(join(new URL('../fixtures/', import.meta.url).pathname, '.tmp-'));
  made.push(dir);
  const manifest = {
    id: 'misbehaving',
    kind: 'destination',
    displayName: 'x',
    operations,
    host: '*',
    sdkApiVersion: 1,
    configSchema: 'schema.json',
  };
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'misbehaving',
      version: '1.0.0',
      type: 'module',
      main: 'index.js',
      integrationClient: manifest,
    }),
  );
  await writeFile(join(dir, 'schema.json'), JSON.stringify({ type: 'object' }));
  await writeFile(
    join(dir, 'index.js'),
    `import { defineDestination, checkResult, DestinationError } from '@integration-client/plugin-sdk';
     export default defineDestination({ id: 'misbehaving', create: () => ({
       check: async () => checkResult([{ name: 'x', ok: true, message: 'ok' }]),
       handlers: { ${handler} },
       close: async () => {},
     }) });`,
  );
  return dir;
}

describe('the conformance suite catches a handler that', () => {
  it('acknowledges without reading its stream', async () => {
    const dir = await pluginWith(`'session-recording': async () => ({ status: 'written' })`);
    const report = await runConformance({ packageDir: dir, config: {} });
    expect(report.codes).toContain('IC_ERR_PLUGIN_STREAM_NOT_CONSUMED');
  });

  it('resolves to something that is not an ack', async () => {
    const dir = await pluginWith(
      `'session-recording': async (item) => { for await (const _ of item.stream); return 'done'; }`,
    );
    const report = await runConformance({ packageDir: dir, config: {} });
    expect(report.codes).toContain('IC_ERR_PLUGIN_ACK_INVALID');
  });

  it('throws an uncoded error when its stream fails', async () => {
    const dir = await pluginWith(
      `'session-recording': async (item) => { for await (const _ of item.stream); return { status: 'written' }; }`,
    );
    const report = await runConformance({ packageDir: dir, config: {} });
    expect(report.codes).toEqual(['IC_ERR_PLUGIN_ERROR_UNCODED']);
  });

  it('has a handler its manifest does not declare', async () => {
    const dir = await pluginWith(
      `'session-recording': async (item) => { try { for await (const _ of item.stream); } catch (e) { throw new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', e.message); } return { status: 'written' }; },
       'site-backup': async () => ({ status: 'written' })`,
    );
    const report = await runConformance({ packageDir: dir, config: {} });
    expect(report.codes).toEqual(['IC_ERR_PLUGIN_OPERATION_UNDECLARED']);
  });

  it('never settles', async () => {
    const dir = await pluginWith(`'session-data': () => new Promise(() => {})`, ['session-data']);
    const report = await runConformance({ packageDir: dir, config: {}, timeoutMs: 200 });
    expect(report.codes).toEqual(['IC_ERR_PLUGIN_ERROR_UNCODED']);
    expect(report.checks.find((c) => !c.ok)?.message).toContain('did not settle within 200 ms');
  });
});
