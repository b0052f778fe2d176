import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './error-codes.js';

const DOC = new URL('../../../docs/errors.md', import.meta.url);

/** Rows of docs/errors.md: | `CODE` | family | yes/no | meaning | */
async function documented(): Promise<Map<string, { family: string; retryable: boolean }>> {
  const rows = new Map<string, { family: string; retryable: boolean }>();
  for (const line of (await readFile(DOC, 'utf8')).split('\n')) {
    const m = /^\|\s*`(IC_ERR_[A-Z_]+)`\s*\|\s*([a-z-]+)\s*\|\s*(yes|no)\s*\|/.exec(line);
    if (m) rows.set(m[1]!, { family: m[2]!, retryable: m[3] === 'yes' });
  }
  return rows;
}

describe('docs/errors.md', () => {
  it('lists exactly the codes of the catalogue', async () => {
    const doc = await documented();
    expect([...doc.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('gives each code the family and retryability of the catalogue', async () => {
    const doc = await documented();
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(doc.get(code), code).toEqual({ family: info.family, retryable: info.retryable });
    }
  });
});
