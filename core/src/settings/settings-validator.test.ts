import { describe, expect, it } from 'vitest';
import { periodMinutes, SettingsValidator } from './settings-validator.js';

const v = new SettingsValidator();
const site = { name: 'main', host: 'support.example.com', clientId: 'id', clientSecret: 'secret' };

describe('SettingsValidator', () => {
  it('accepts a site and applies defaults', () => {
    expect(v.site(site)).toEqual({ ...site, insecure: false, rateLimitPerSecond: 20 });
  });

  it('refuses a host given with https://, names the field and says what it should be, not the regular expression', () => {
    expect(() => v.site({ ...site, host: 'https://support.example.com' })).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_CONFIG_INVALID',
        message:
          'site "main" is invalid: /host: is not valid (Host name of the site, optionally with :port, without https://)',
      }),
    );
  });

  it('accepts schedules from 1m to 7d and refuses 8d, 0m and a time of day on a sub-day period', () => {
    const base = { name: 's', transfers: [{ site: 'main', destination: 'files', dataTypes: ['session-data'] }] };
    expect(v.schedule({ ...base, period: '1m' }).enabled).toBe(true);
    expect(v.schedule({ ...base, period: '7d', timeOfDay: '02:30' }).timeOfDay).toBe('02:30');
    expect(() => v.schedule({ ...base, period: '8d' })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('/period: must be at most 7d') }),
    );
    expect(() => v.schedule({ ...base, period: '0m' })).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_CONFIG_INVALID',
        message: expect.stringContaining('/period: is not valid (From `1m` to `7d`: a whole number of minutes'),
      }),
    );
    expect(() => v.schedule({ ...base, period: '90m', timeOfDay: '01:00' })).toThrow(
      expect.objectContaining({
        message: expect.stringContaining('/timeOfDay: is only allowed for periods in whole days'),
      }),
    );
    expect(() =>
      v.schedule({ ...base, period: '1d', transfers: [{ site: 'a', destination: 'b', dataTypes: ['videos'] }] }),
    ).toThrow(expect.objectContaining({ message: expect.stringContaining('/transfers/0/dataTypes/0') }));
  });

  it('refuses a schedule naming one site → destination pair in two transfers, and says how to merge them', () => {
    const t = (site: string, destination: string, ...dataTypes: string[]) => ({ site, destination, dataTypes });
    const schedule = (...transfers: unknown[]) => v.schedule({ name: 's', period: '1h', transfers });
    expect(() =>
      schedule(t('main', 'files', 'session-data'), t('main', 'db', 'session-data'), t('main', 'files', 'site-backup')),
    ).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_CONFIG_INVALID',
        message:
          'schedule "s" is invalid: /transfers/2: repeats site "main" → destination "files" of transfer 1: name all the data types of a pair in one transfer (main:files:session-data,site-backup)',
      }),
    );
    // Another site into the same destination, or the same site into another, is a pair of its own.
    expect(schedule(t('main', 'files', 'session-data'), t('eu', 'files', 'session-data')).transfers).toHaveLength(2);
  });

  it('validates destinations and application settings', () => {
    expect(v.destination({ name: 'files', plugin: 'file-system', config: {} }).plugin).toBe('file-system');
    expect(() => v.destination({ name: 'files', plugin: 'File System', config: {} })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('/plugin') }),
    );
    expect(v.application(undefined)).toMatchObject({ logLevel: 'info', overlapSeconds: 3600 });
    expect(() => v.application({ notification: { smtpHost: 'mx', from: 'not-an-address', to: ['a@b.c'] } })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('/notification/from: must match format "email"') }),
    );
  });

  it('refuses site and destination names that would be read as two (a colon, an arrow, control characters)', () => {
    for (const name of ['a:b', 'a->b', 'tab\there', ' main', 'main '])
      for (const check of [() => v.site({ ...site, name }), () => v.destination({ name, plugin: 'sql', config: {} })])
        expect(check, JSON.stringify(name)).toThrow(
          expect.objectContaining({
            code: 'IC_ERR_CONFIG_INVALID',
            message: expect.stringContaining(`${JSON.stringify(name)} is invalid: /name: must not contain ':'`),
          }),
        );
    expect(v.site({ ...site, name: 'Main site-2 (EU)' }).name).toBe('Main site-2 (EU)');
  });

  it('converts periods to minutes', () => {
    expect([periodMinutes('1m'), periodMinutes('2h'), periodMinutes('7d')]).toEqual([1, 120, 10080]);
  });
});
