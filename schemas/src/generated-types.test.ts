import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generate } from '../scripts/generate-types.mjs';

describe('generated schema types', () => {
  it('are in step with the JSON Schemas they are generated from', async () => {
    const files = await generate();
    expect(files.size).toBeGreaterThan(5);
    for (const [path, body] of files) {
      expect(await readFile(path, 'utf8'), `${path} is stale: run npm run gen:types`).toBe(body);
    }
  });
});
