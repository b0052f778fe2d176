import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastCommand, tailLines } from './logs.js';

/** Log files with `lines` lines each (numbered across files, some with multi-byte characters), oldest first. */
function files(...counts: number[]): { paths: string[]; all: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ic-tail-'));
  const all: string[] = [];
  const paths = counts.map((count, f) => {
    const lines = Array.from(
      { length: count },
      (_, i) => `line ${all.length + i} ${i % 3 ? 'äöü→' : 'x'.repeat(i % 17)}`,
    );
    all.push(...lines);
    const path = join(dir, `client.2026-11-0${f + 1}.1.log`);
    writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
    return path;
  });
  return { paths, all };
}

describe('tailLines', () => {
  it('gives the last n lines across files, oldest first, whatever the block size', () => {
    const { paths, all } = files(40, 0, 25);
    for (const block of [1, 3, 7, 64, 1 << 20])
      for (const n of [0, 1, 10, 25, 26, 64, 65, 1000])
        expect(
          tailLines(paths, n, () => true, block),
          `block ${block}, n ${n}`,
        ).toEqual(n ? all.slice(-n) : []);
  });

  it('counts only the lines kept, reading older files only while too few were found', () => {
    const { paths, all } = files(30, 30);
    const even = (l: string) => Number(l.split(' ')[1]) % 2 === 0;
    expect(tailLines(paths, 20, even, 5)).toEqual(all.filter(even).slice(-20));
    expect(tailLines([...paths, join(tmpdir(), 'gone.log')], 3, () => true)).toEqual(all.slice(-3)); // removed meanwhile
  });

  it('keeps a last line without its newline, and a file that is one long line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ic-tail-'));
    const path = join(dir, 'client.2026-11-01.1.log');
    writeFileSync(path, `first\n${'y'.repeat(5000)}\nlast without newline`);
    expect(tailLines([path], 2, () => true, 100)).toEqual(['y'.repeat(5000), 'last without newline']);
  });

  it("finds the last command another process started, past this one's and past other lines", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ic-tail-'));
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    writeFileSync(
      join(dir, 'client.2026-11-01.1.log'),
      line({ level: 30, time: 1_700_000_000_000, pid: 1, msg: 'command started', command: 'schedule run nightly' }) +
        line({ level: 30, time: 1_700_000_001_000, pid: 1, msg: 'transfer finished' }),
    );
    writeFileSync(
      join(dir, 'client.2026-11-02.1.log'),
      line({ level: 30, time: 1_700_000_002_000, pid: 2, msg: 'command started', command: 'service status' }),
    );
    expect(lastCommand(dir, 2)).toEqual({
      at: new Date(1_700_000_000_000).toISOString(),
      command: 'ic schedule run nightly',
    });
    expect(lastCommand(dir, 3)?.command).toBe('ic service status');
    expect(lastCommand(join(dir, 'none'), 3)).toBeUndefined();
  });
});
