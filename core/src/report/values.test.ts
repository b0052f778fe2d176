import { describe, expect, it } from 'vitest';
import { isoFromUnixSeconds, toBool, toDurationSeconds, toInt, toIp, toIsoTime } from './values.js';

describe('value conversions', () => {
  it('strip ports from IPv4 and bracketed IPv6, keep bare IPv6, drop Unknown', () => {
    expect([
      toIp('4.231.237.19:61606'),
      toIp('[2a01:e34::1]:56722'),
      toIp('[::1]'),
      toIp('2a01:e34::1'),
      toIp('Unknown'),
      toIp(' '),
      toIp('10.0.0.4'),
    ]).toEqual(['4.231.237.19', '2a01:e34::1', '::1', '2a01:e34::1', undefined, undefined, '10.0.0.4']);
  });

  it('read durations with hours over 24 and day prefixes', () => {
    expect([
      toDurationSeconds('00:15:02'),
      toDurationSeconds('27:00:01'),
      toDurationSeconds('2 days 01:00:00'),
      toDurationSeconds('x'),
      toDurationSeconds(''),
    ]).toEqual([902, 97201, 176400, undefined, undefined]);
  });

  it('prefer the timestamp attribute and fall back to ISO text', () => {
    expect(toIsoTime('1733239565', 'ignored')).toBe('2024-12-03T15:26:05.000Z');
    expect(toIsoTime(undefined, '2024-12-03T16:26:05+01:00')).toBe('2024-12-03T15:26:05.000Z');
    expect(toIsoTime('', '')).toBeUndefined();
  });

  it('read integers and flags strictly', () => {
    expect([toInt('12'), toInt(' 7 '), toInt('1.5'), toInt('x'), toInt(undefined)]).toEqual([
      12,
      7,
      undefined,
      undefined,
      undefined,
    ]);
    expect([toBool('1'), toBool('0'), toBool('true'), toBool('maybe')]).toEqual([true, false, true, undefined]);
  });

  it('formats Unix seconds exactly as Date#toISOString does, leap days and century rules included', () => {
    const edges = [0, 1, 59, 86399, 86400, 951782400, 951868800, 4107542399, 4107542400, 253402300799];
    // 2000-02-29, 2000-03-01, 2100-02-28T23:59:59, 2100-03-01 (no leap day in 2100), 9999-12-31T23:59:59
    let x = 0x2545f491;
    const random = Array.from({ length: 20000 }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) * 59 + (x & 0xff); // spread over 1970..9999
    });
    for (const s of [...edges, ...random])
      expect(isoFromUnixSeconds(s), String(s)).toBe(new Date(s * 1000).toISOString());
    expect(isoFromUnixSeconds(253402300800)).toBe('+010000-01-01T00:00:00.000Z'); // Date's form beyond 9999
  });
});
