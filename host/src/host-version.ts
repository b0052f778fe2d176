import { readFileSync } from 'node:fs';

/** The host's version, from its package.json (what plugin `host` ranges are checked against). */
export const HOST_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
