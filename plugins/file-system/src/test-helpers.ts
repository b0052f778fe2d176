import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ack, Destination, Item } from '@integration-client/plugin-sdk';
import { compileConfigSchema } from '@integration-client/plugin-sdk';
import { createFakeContext, type FakeContext } from '@integration-client/plugin-sdk/testing';
import { readFileSync } from 'node:fs';
import plugin, { type FileSystemConfig } from './index.js';

const schema = compileConfigSchema(
  JSON.parse(readFileSync(new URL('../config.schema.json', import.meta.url), 'utf8')),
  'file-system',
);

/** A fresh temporary directory. */
export const tempDir = (prefix = 'ic-fs-'): Promise<string> => mkdtemp(join(tmpdir(), prefix));

/** A destination made the way the host makes one: config validated against the schema (defaults applied). */
export async function makeDestination(
  config: Record<string, unknown>,
): Promise<{ dest: Destination; ctx: FakeContext<FileSystemConfig> }> {
  const ctx = createFakeContext({ config: schema.validate<FileSystemConfig>(config, 'test destination') });
  return { dest: await plugin.create(ctx), ctx };
}

/** Delivers one item to its handler. */
export function deliver(dest: Destination, item: Item): Promise<Ack> {
  const handler = dest.handlers[item.operation] as (i: Item, o: { signal: AbortSignal }) => Promise<Ack>;
  return handler(item, { signal: new AbortController().signal });
}
