import { ConfigError, type Operation } from '@integration-client/plugin-sdk';

/** The seed's replacement values, in the order the guide lists them. */
export const TOKENS = [
  'LSEQ',
  'LSID',
  'EXTERNAL_KEY',
  'SESSION_TYPE',
  'SUPPORT_SITE_HOST',
  'INSTANCE',
  'EXTENSION',
] as const;
export type Token = (typeof TOKENS)[number];

/** Values substituted for the tokens of one item. */
export type TokenValues = Readonly<Record<Token, string>>;

const BASE = '%SUPPORT_SITE_HOST%-%SESSION_TYPE%-%LSID%';

/** Per-operation defaults; the seed's example `support.example.com-support-1234.flv` is the session-recording one. */
export const DEFAULT_FORMATS: Readonly<Record<Exclude<Operation, 'system-information'>, string>> = {
  'session-data': `${BASE}.%EXTENSION%`,
  'session-recording': `${BASE}.%EXTENSION%`,
  'command-shell-recording': `${BASE}-shell%INSTANCE%.%EXTENSION%`,
  'show-my-screen-recording': `${BASE}-sms%INSTANCE%.%EXTENSION%`,
  'presentation-data': `${BASE}.%EXTENSION%`,
  'presentation-recording': `${BASE}.%EXTENSION%`,
  'site-backup': `${BASE}.%EXTENSION%`,
};

/** A parsed format: literal text and tokens, alternating. */
export type FormatPart = { readonly literal: string } | { readonly token: Token };

const VALID = TOKENS.map((t) => `%${t}%`).join(', ');

/**
 * Parses a File Name Format. Between percent signs only upper-case letters and `_` are allowed and names are
 * case-sensitive (seed); an unknown token, a malformed one, a lone `%` or a path separator is a config error
 * that lists the valid tokens.
 */
export function parseFileNameFormat(format: string, field: string): FormatPart[] {
  const parts: FormatPart[] = [];
  const fail = (what: string): never => {
    throw new ConfigError(`${field} ${JSON.stringify(format)}: ${what}. Valid replacement values: ${VALID}.`, {
      details: { errors: [{ path: `/${field}`, message: what }] },
    });
  };
  if (/[/\\]/.test(format))
    fail('path separators are not allowed; the file is always created directly in the Destination Directory');
  let rest = format;
  while (rest.length > 0) {
    const open = rest.indexOf('%');
    if (open < 0) {
      parts.push({ literal: rest });
      break;
    }
    if (open > 0) parts.push({ literal: rest.slice(0, open) });
    const close = rest.indexOf('%', open + 1);
    if (close < 0) fail(`a "%" at position ${format.length - rest.length + open} is not closed`);
    const name = rest.slice(open + 1, close);
    if (!/^[A-Z_]+$/.test(name))
      fail(`"%${name}%" is malformed: only UPPER CASE letters and _ are allowed between the percent signs`);
    if (!(TOKENS as readonly string[]).includes(name)) fail(`"%${name}%" is not a replacement value`);
    parts.push({ token: name as Token });
    rest = rest.slice(close + 1);
  }
  return parts;
}

/** Renders a parsed format with already-sanitised values. */
export function renderFileName(parts: readonly FormatPart[], values: TokenValues): string {
  return parts.map((p) => ('literal' in p ? p.literal : values[p.token])).join('');
}
