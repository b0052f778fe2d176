import type { Item } from '@integration-client/plugin-sdk';
import { TOKENS, type Token, type TokenValues } from './file-name-format.js';
import { safeValue } from './safe-name.js';

/** `20241203T120000Z`: a backup's time as it appears in %LSID%. */
function compactTime(iso: string): string {
  return new Date(iso)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** Every token's safe value; a token the item has no value for is empty (an empty extension becomes `flv`). */
function values(raw: Partial<Record<Token, string | number>>): TokenValues {
  const out = {} as Record<Token, string>;
  for (const k of TOKENS) out[k] = safeValue(raw[k] === undefined ? '' : String(raw[k]));
  if (out.EXTENSION === '') out.EXTENSION = 'flv';
  return out;
}

/**
 * The replacement values of an item. Sessions and recordings use their own fields. Presentations have
 * %SESSION_TYPE% `presentation`. A site backup has no session, so: %SESSION_TYPE% = `backup`,
 * %LSID% = the backup's UTC time as `YYYYMMDDTHHMMSSZ`, %LSEQ% = that time in Unix seconds, %EXTERNAL_KEY% and
 * %INSTANCE% empty, %EXTENSION% = `nsb`.
 */
export function tokenValues(item: Item): TokenValues {
  switch (item.operation) {
    case 'session-data':
    case 'system-information': {
      const s = item.session;
      return values({
        LSEQ: s.lseq,
        LSID: s.lsid,
        EXTERNAL_KEY: s.externalKey,
        SESSION_TYPE: s.sessionType,
        SUPPORT_SITE_HOST: item.site.host,
        EXTENSION: 'xml',
      });
    }
    case 'presentation-data': {
      const p = item.presentation;
      return values({
        LSEQ: p.lseq,
        LSID: p.lsid,
        SESSION_TYPE: 'presentation',
        SUPPORT_SITE_HOST: item.site.host,
        EXTENSION: 'xml',
      });
    }
    case 'site-backup': {
      const m = item.meta;
      return values({
        LSEQ: Math.floor(Date.parse(m.takenAt) / 1000),
        LSID: compactTime(m.takenAt),
        SESSION_TYPE: 'backup',
        SUPPORT_SITE_HOST: m.siteHost,
        EXTENSION: m.extension || 'nsb',
      });
    }
    default: {
      const m = item.meta;
      const type = m.sessionType ?? (item.operation === 'presentation-recording' ? 'presentation' : 'support');
      return values({
        LSEQ: m.lseq,
        LSID: m.lsid,
        EXTERNAL_KEY: m.externalKey,
        SESSION_TYPE: type,
        SUPPORT_SITE_HOST: m.siteHost,
        INSTANCE: m.instance,
        EXTENSION: m.extension,
      });
    }
  }
}
