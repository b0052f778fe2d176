import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { missingServiceNodeFlags, SERVICE_NODE_FLAGS } from './heap-tuning.js';

describe('service node flags', () => {
  it('names the flags a process was started without, whatever their value or spelling', () => {
    expect(SERVICE_NODE_FLAGS).toEqual(['--initial-old-space-size=128']);
    expect(missingServiceNodeFlags([])).toEqual(['--initial-old-space-size=128']);
    expect(missingServiceNodeFlags(['--expose-gc', '--max-old-space-size=512'])).toEqual([
      '--initial-old-space-size=128',
    ]);
    expect(missingServiceNodeFlags(['--initial-old-space-size=64'])).toEqual([]);
    expect(missingServiceNodeFlags(['--initial_old_space_size=128'])).toEqual([]);
  });

  it('reads the running process: node started with the flags misses none', () => {
    const run = (flags: string[]) =>
      execFileSync(process.execPath, [...flags, '-p', 'JSON.stringify(process.execArgv)'])
        .toString()
        .trim();
    // node accepts the flag on its command line and hands it to V8 (it refuses it in NODE_OPTIONS)
    expect(missingServiceNodeFlags(JSON.parse(run([...SERVICE_NODE_FLAGS])) as string[])).toEqual([]);
    expect(missingServiceNodeFlags(JSON.parse(run([])) as string[])).toEqual([...SERVICE_NODE_FLAGS]);
  });
});
