import { describe, expect, it } from 'vitest';
import { toBool, toDurationSeconds, toInt, toIp, toIsoTime } from './values.js';

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
});
