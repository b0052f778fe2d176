import { describe, expect, it } from 'vitest';
import { holderGone, HOLDER, pairLease } from './pair-lease.js';

describe('pair leases', () => {
  it('name a pair as transfer:<site->destination>, and fit names of 100 characters each into 200, still unique', () => {
    expect(pairLease('main', 'files')).toBe('transfer:main->files');
    const [a, b] = ['a'.repeat(100), 'b'.repeat(100)];
    const long = pairLease(a, b);
    expect(long.length).toBe(200);
    expect(long.startsWith(`transfer:${a}->`)).toBe(true);
    expect(pairLease(a, b)).toBe(long); // stable
    expect(pairLease(a, `${'b'.repeat(99)}c`)).not.toBe(long); // differs where the start is cut
  });

  it('take a holder of this process that holds nothing as gone, not this process itself nor another host', () => {
    expect(holderGone(`${HOLDER} run 3 of schedule "x", transfer 1`)).toBe(true);
    expect(holderGone(HOLDER)).toBe(false);
    expect(holderGone('elsewhere.example.com:1 run 3')).toBe(false);
  });
});
