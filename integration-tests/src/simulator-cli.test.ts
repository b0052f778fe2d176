import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, listSessions, SiteClient } from '@integration-client/core';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/ic-appliance-sim.js', import.meta.url));

describe('ic-appliance-sim', () => {
  it('prints one JSON line with url, host and credentials, serves them, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, '--port', '0', '--sessions', '25', '--seed', '42']);
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const address = JSON.parse(line) as {
      url: string;
      host: string;
      clientId: string;
      clientSecret: string;
      caFile: string;
    };
    expect(Object.keys(address)).toEqual(['url', 'host', 'clientId', 'clientSecret', 'caFile']);
    expect(address.url).toMatch(/^https:\/\/localhost:\d+$/);
    const client = await SiteClient.create({ site: { ...address }, logger: createLogger({ level: 'silent' }) });
    expect(await listSessions(client, { end_time: 0, duration: 0 })).toHaveLength(25);
    await client.close();
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
  });

  it('explains its options with --help', async () => {
    const child = spawn(process.execPath, [BIN, '--help']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await once(child, 'exit');
    expect(out).toContain('example: npx ic-appliance-sim --port 0 --sessions 1000 --seed 42');
  });
});
