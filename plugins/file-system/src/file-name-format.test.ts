import { describe, expect, it } from 'vitest';
import { DEFAULT_FORMATS, parseFileNameFormat, renderFileName, TOKENS } from './file-name-format.js';
import { safeFileName, safeValue } from './safe-name.js';

const values = {
  LSEQ: '7',
  LSID: '1234',
  EXTERNAL_KEY: 'INC1',
  SESSION_TYPE: 'support',
  SUPPORT_SITE_HOST: 'support.example.com',
  INSTANCE: '0',
  EXTENSION: 'flv',
};

describe('File Name Format', () => {
  it('reproduces the seed example with the session-recording default', () => {
    expect(renderFileName(parseFileNameFormat(DEFAULT_FORMATS['session-recording'], 'f'), values)).toBe(
      'support.example.com-support-1234.flv',
    );
  });

  it('puts %INSTANCE% in the defaults of per-instance recordings, distinct per kind', () => {
    const shell = renderFileName(parseFileNameFormat(DEFAULT_FORMATS['command-shell-recording'], 'f'), values);
    const sms = renderFileName(parseFileNameFormat(DEFAULT_FORMATS['show-my-screen-recording'], 'f'), values);
    expect([shell, sms]).toEqual([
      'support.example.com-support-1234-shell0.flv',
      'support.example.com-support-1234-sms0.flv',
    ]);
  });

  it('substitutes every seed token', () => {
    const format = TOKENS.map((t) => `%${t}%`).join('_');
    expect(renderFileName(parseFileNameFormat(format, 'f'), values)).toBe(
      '7_1234_INC1_support_support.example.com_0_flv',
    );
  });

  it.each([
    ['%lsid%.xml', 'malformed'],
    ['%Lsid%.xml', 'malformed'],
    ['%LSID1%.xml', 'malformed'],
    ['%SESSION_ID%.xml', 'is not a replacement value'],
    ['%LSID.xml', 'is not closed'],
    ['logs/%LSID%.xml', 'path separators'],
  ])('refuses %s naming the valid tokens', (format, why) => {
    expect(() => parseFileNameFormat(format, 'fileNameFormat')).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_CONFIG_INVALID',
        message: expect.stringMatching(
          new RegExp(
            `${why}.*Valid replacement values: %LSEQ%, %LSID%, %EXTERNAL_KEY%, %SESSION_TYPE%, %SUPPORT_SITE_HOST%, %INSTANCE%, %EXTENSION%`,
          ),
        ),
      }),
    );
  });
});

describe('safe names', () => {
  it('replaces separators, control characters and Windows-reserved characters in values', () => {
    expect(safeValue('../..\\etc/passwd\u0000:*?"<>|\u001f')).toBe('.._.._etc_passwd_________');
  });

  it('never yields an empty, dot or dot-dot name and strips trailing dots and spaces', () => {
    expect([safeFileName(''), safeFileName('.'), safeFileName('..'), safeFileName('a. . ')]).toEqual([
      '_',
      '_',
      '_',
      'a',
    ]);
  });

  it('prefixes Windows device names', () => {
    expect([
      safeFileName('CON'),
      safeFileName('con.xml'),
      safeFileName('lpt9.tar.gz'),
      safeFileName('console.xml'),
    ]).toEqual(['_CON', '_con.xml', '_lpt9.tar.gz', 'console.xml']);
  });

  it('shortens over-long names deterministically, keeping the extension and distinctness', () => {
    const a = safeFileName(`${'é'.repeat(300)}-a.xml`);
    const b = safeFileName(`${'é'.repeat(300)}-b.xml`);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(240);
    expect(a.endsWith('.xml')).toBe(true);
    expect(a).not.toBe(b);
    expect(safeFileName(`${'é'.repeat(300)}-a.xml`)).toBe(a);
    expect(a).toMatch(/~[0-9a-f]{8}\.xml$/);
  });
});
