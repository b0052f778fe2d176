import { createHash } from 'node:crypto';

/**
 * Making names safe — deterministic, and the same on every OS so a tree written on Linux copies to Windows:
 * 1. In each substituted value, `/ \ < > : " | ? *`, NUL and other control characters become `_`.
 * 2. In the whole name, trailing dots and spaces are removed (Windows drops them silently).
 * 3. An empty name, `.` or `..` becomes `_`.
 * 4. A Windows device name (CON, PRN, AUX, NUL, COM1–9, LPT1–9) before the first dot gets a `_` prefix.
 * 5. A name longer than {@link MAX_NAME_BYTES} UTF-8 bytes keeps its extension, has its stem cut, and ends the stem
 *    with `~` and 8 hex digits of the SHA-256 of the full name, so two long names stay distinct.
 * Values cannot introduce separators, so a name can never leave the Destination Directory.
 */
export const MAX_NAME_BYTES = 240; // 255 minus room for AppendNumber's ".NNNN" and temp suffixes

// eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach a file name
const UNSAFE = /[/\\<>:"|?*\u0000-\u001f\u007f]/g;
const DEVICE = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])$/i;

/** Step 1: a value made safe to substitute into a file name. */
export function safeValue(value: string): string {
  return value.replace(UNSAFE, '_');
}

function truncateUtf8(text: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** Steps 2–5 on a rendered name. */
export function safeFileName(name: string): string {
  let n = name.replace(UNSAFE, '_').replace(/[. ]+$/, '');
  if (n === '' || n === '.' || n === '..') n = '_';
  const firstDot = n.indexOf('.');
  const head = firstDot < 0 ? n : n.slice(0, firstDot);
  if (DEVICE.test(head)) n = `_${n}`;
  if (Buffer.byteLength(n) <= MAX_NAME_BYTES) return n;
  const lastDot = n.lastIndexOf('.');
  const ext = lastDot > 0 && Buffer.byteLength(n.slice(lastDot)) <= 16 ? n.slice(lastDot) : '';
  const hash = `~${createHash('sha256').update(n).digest('hex').slice(0, 8)}`;
  const stem = truncateUtf8(n.slice(0, n.length - ext.length), MAX_NAME_BYTES - Buffer.byteLength(hash + ext));
  return `${stem}${hash}${ext}`;
}
