/** Conversions of appliance text values, tolerant of the quirks in the fact sheet. */

/**
 * A copy of `text` that shares no memory with the report it was read from. V8 keeps a substring as a slice of its
 * parent, and the parser's strings are cut from 16 K-character slices of the report: one lsid kept in a session's
 * in-flight state (engine, ledger keys, a re-fetch's dedupe set) kept its whole slice alive — ~10 KB per session
 * in flight, all of it promoted to the old generation. Only for the few strings that outlive their item.
 */
export function ownedCopy(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** Integer or undefined (empty, non-numeric). */
export function toInt(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*-?\d+\s*$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `1` / `true` → true, `0` / `false` → false, anything else undefined. */
export function toBool(text: string | undefined): boolean | undefined {
  const t = text?.trim().toLowerCase();
  if (t === '1' || t === 'true' || t === 'yes') return true;
  if (t === '0' || t === 'false' || t === 'no') return false;
  return undefined;
}

/** `HH:MM:SS` (hours may exceed 24, an optional `D:` or `D days ` prefix) → seconds. */
export function toDurationSeconds(text: string | undefined): number | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  const days = /^(\d+)\s*days?\s+(.*)$/i.exec(t);
  const clock = (days ? days[2]! : t).split(':').map((p) => Number(p));
  if (clock.length < 2 || clock.length > 4 || clock.some((n) => !Number.isFinite(n) || n < 0)) return undefined;
  const [s = 0, m = 0, h = 0, d = 0] = clock.reverse();
  return Math.round(((days ? Number(days[1]) : 0) + d) * 86400 + h * 3600 + m * 60 + s);
}

/**
 * A time element → UTC ISO-8601. Prefers the `timestamp` attribute (Unix seconds); falls back to the text
 * (ISO-8601 with offset). Undefined when neither is usable (e.g. an empty end_time of a session in progress).
 */
export function toIsoTime(timestamp: string | undefined, text: string | undefined): string | undefined {
  const secs = toInt(timestamp);
  if (secs !== undefined && secs > 0) return isoFromUnixSeconds(secs);
  const t = text?.trim();
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const pad2 = (n: number) => TWO_DIGITS[n]!;
/** Seconds after 9999-12-31T23:59:59Z; beyond, Date formats (with its six-digit years). */
const YEAR_10000 = 253402300800;

/**
 * Unix seconds (a whole number) → `YYYY-MM-DDTHH:MM:SS.000Z`, as `new Date(s * 1000).toISOString()` writes it but
 * several times faster (every session and event has times; Date#toISOString was a tenth of the parse). The date
 * is the proleptic Gregorian calendar's, by Howard Hinnant's days-to-civil algorithm.
 */
export function isoFromUnixSeconds(secs: number): string {
  if (!Number.isSafeInteger(secs) || secs < 0 || secs >= YEAR_10000) return new Date(secs * 1000).toISOString();
  const days = Math.floor(secs / 86400);
  let rest = secs - days * 86400;
  const hh = Math.floor(rest / 3600);
  rest -= hh * 3600;
  const mi = Math.floor(rest / 60);
  const ss = rest - mi * 60;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const dd = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const mm = mp < 10 ? mp + 3 : mp - 9;
  const yyyy = yoe + era * 400 + (mm <= 2 ? 1 : 0);
  return `${yyyy}-${pad2(mm)}-${pad2(dd)}T${pad2(hh)}:${pad2(mi)}:${pad2(ss)}.000Z`;
}

/** Values that mean "not collected". */
const UNKNOWN = new Set(['', 'unknown']);

/** Text that is absent for `Unknown` or empty. */
export function known(text: string | undefined): string | undefined {
  const t = text?.trim();
  return t === undefined || UNKNOWN.has(t.toLowerCase()) ? undefined : t;
}

/** `1.2.3.4:5678` → `1.2.3.4`; `[2a01::1]:56722` → `2a01::1`; bare IPv6 kept; `Unknown` → undefined. */
export function toIp(text: string | undefined): string | undefined {
  const t = known(text);
  if (t === undefined) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(t);
  if (bracketed) return bracketed[1];
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(t);
  if (v4) return v4[1];
  return t;
}
