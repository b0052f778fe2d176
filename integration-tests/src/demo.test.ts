/** `npm run demo`'s script, as the README's first command runs it (small population to keep it quick). */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

describe('npm run demo', () => {
  it('moves every data type from the simulator into ./demo-output and says what landed', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(REPO_ROOT, 'scripts/demo.mjs'), '--sessions', '20'],
      {
        cwd: REPO_ROOT,
      },
    );
    expect(stdout).toMatch(/\$ ic site add demo --host localhost:\d+/);
    expect(stdout).not.toMatch(/--client-secret/);
    expect(stdout).toMatch(/run 1: succeeded/);
    expect(stdout).toMatch(/sessions 20, events \d+/);
    expect(stdout).toMatch(/site backups 1/);
    const db = new Database(join(REPO_ROOT, 'demo-output', 'sessions.db'), { readonly: true });
    expect((db.prepare('SELECT COUNT(*) AS n FROM session').get() as { n: number }).n).toBe(20);
    db.close();
  }, 120_000);
});
