import { presentationSchema, sessionSchema } from '@integration-client/schemas';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors/index.js';
import { readManifestFrom } from './manifest.js';
import { samplePresentation, sampleSession } from './testing/samples.js';
import { checkValid, createAjv } from './validation.js';

const ajv = createAjv();
ajv.addSchema(sessionSchema);
const validateSession = ajv.getSchema(sessionSchema.$id)!;
const validatePresentation = ajv.compile(presentationSchema);

describe('session schema', () => {
  it('accepts a session built from the seed field list', () => {
    expect(validateSession(sampleSession()), JSON.stringify(validateSession.errors)).toBe(true);
  });

  it('accepts an in-progress session without end time', () => {
    const s = sampleSession();
    delete s.endTime;
    expect(validateSession(s)).toBe(true);
  });

  it('rejects a wrong type with a readable path', () => {
    const bad = sampleSession();
    (bad.representatives[0] as unknown as { gsnumber: string }).gsnumber = 'twenty-one';
    expect(() => checkValid(validateSession, bad, 'session')).toThrow(ConfigError);
    try {
      checkValid(validateSession, bad, 'session');
    } catch (err) {
      expect((err as ConfigError).message).toContain('/representatives/0/gsnumber: must be integer');
      expect((err as ConfigError).details).toEqual({
        errors: [{ path: '/representatives/0/gsnumber', message: 'must be integer' }],
      });
    }
  });

  it('rejects unknown top-level fields (they belong in extra) and keeps anything inside extra', () => {
    expect(validateSession({ ...sampleSession(), surprise: 1 })).toBe(false);
    expect(validateSession({ ...sampleSession(), extra: { rep_join_time: { text: '2024' } } })).toBe(true);
  });

  it('rejects a start time that is not a date-time', () => {
    expect(validateSession({ ...sampleSession(), startTime: 'yesterday' })).toBe(false);
  });
});

describe('presentation schema', () => {
  it('accepts a sample presentation and refers to the session event shape', () => {
    expect(validatePresentation(samplePresentation()), JSON.stringify(validatePresentation.errors)).toBe(true);
    expect(
      validatePresentation(samplePresentation({ events: [{ type: 'x', time: 'bad', data: [], files: [] }] })),
    ).toBe(false);
  });
});

describe('plugin manifest', () => {
  const manifest = {
    id: 'jsonl',
    kind: 'destination',
    displayName: 'JSON lines',
    operations: ['session-data'],
    host: '^0.1.0',
    sdkApiVersion: 1,
    configSchema: 'config.schema.json',
  };

  it('is read from the integrationClient key', () => {
    expect(readManifestFrom({ integrationClient: manifest }, 'pkg')).toEqual(manifest);
  });

  it('is missing or invalid with distinct codes naming the field', () => {
    expect(() => readManifestFrom({ name: 'x' }, 'pkg')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_MANIFEST_MISSING' }),
    );
    expect(() => readManifestFrom({ integrationClient: { ...manifest, operations: ['telepathy'] } }, 'pkg')).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_PLUGIN_MANIFEST_INVALID',
        message: expect.stringContaining('/operations/0'),
      }),
    );
    expect(() => readManifestFrom({ integrationClient: { ...manifest, id: 'Not Kebab' } }, 'pkg')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_MANIFEST_INVALID', message: expect.stringContaining('/id') }),
    );
  });
});
