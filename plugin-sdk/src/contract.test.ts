import { describe, expect, it } from 'vitest';
import { checkAck, isAck } from './ack.js';
import { checkCheckResult, checkResult } from './check-result.js';
import { compileConfigSchema, maskSecrets } from './config-schema.js';
import { defineDestination, isDestinationPlugin } from './define-destination.js';
import { checkApiVersion, checkHostRange, type PluginManifest } from './manifest.js';
import { isOperation, isStreamOperation, OPERATIONS } from './operations.js';
import { SDK_API_VERSION } from './version.js';

const manifest: PluginManifest = {
  id: 'x',
  kind: 'destination',
  displayName: 'X',
  operations: ['session-data'],
  host: '^0.1.0',
  sdkApiVersion: 1,
  configSchema: 'c.json',
};

describe('defineDestination', () => {
  it('returns a frozen, branded, versioned plugin object', () => {
    const p = defineDestination({
      id: 'x',
      create: () => ({ check: () => Promise.resolve(checkResult([])), handlers: {}, close: () => Promise.resolve() }),
    });
    expect(isDestinationPlugin(p)).toBe(true);
    expect(p.apiVersion).toBe(SDK_API_VERSION);
    expect(Object.isFrozen(p)).toBe(true);
    expect(isDestinationPlugin({ id: 'x', create: () => undefined })).toBe(false);
  });
});

describe('operations', () => {
  it('are the eight of the design, streams being recordings and backups', () => {
    expect(OPERATIONS).toHaveLength(8);
    expect(OPERATIONS.filter(isStreamOperation)).toEqual([
      'session-recording',
      'command-shell-recording',
      'show-my-screen-recording',
      'presentation-recording',
      'site-backup',
    ]);
    expect(isOperation('session-data')).toBe(true);
    expect(isOperation('access-key')).toBe(false);
  });
});

describe('acks and check results', () => {
  it('accept only well-formed values', () => {
    expect(isAck({ status: 'written', location: '/x', bytes: 3 })).toBe(true);
    expect(isAck({ status: 'skipped' })).toBe(true);
    expect(isAck({ status: 'done' })).toBe(false);
    expect(isAck({ status: 'written', bytes: -1 })).toBe(false);
    expect(isAck({ status: 'written', surprise: true })).toBe(false);
    expect(() => checkAck(undefined, 'h')).toThrow(expect.objectContaining({ code: 'IC_ERR_PLUGIN_ACK_INVALID' }));
    expect(
      checkResult([
        { name: 'a', ok: true, message: '' },
        { name: 'b', ok: false, message: 'no' },
      ]).ok,
    ).toBe(false);
    expect(checkResult([]).ok).toBe(false);
    expect(() => checkCheckResult({ ok: true }, 'check()')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_CHECK_INVALID' }),
    );
  });
});

describe('config schema', () => {
  const schema = {
    type: 'object',
    additionalProperties: false,
    required: ['dir'],
    properties: {
      dir: { type: 'string' },
      mode: { type: 'string', enum: ['a', 'b'], default: 'a' },
      token: { type: 'string', writeOnly: true },
    },
  };

  it('validates, applies defaults to a frozen copy and names secret fields', () => {
    const compiled = compileConfigSchema(schema, 'p');
    const input = { dir: '/d', token: 's3cret' };
    const config = compiled.validate<{ dir: string; mode: string }>(input, 'cfg');
    expect(config).toEqual({ dir: '/d', mode: 'a', token: 's3cret' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(input).toEqual({ dir: '/d', token: 's3cret' });
    expect(compiled.secretFields).toEqual(['token']);
    expect(maskSecrets(config, compiled.secretFields)).toEqual({ dir: '/d', mode: 'a', token: '********' });
  });

  it('rejects a bad config naming the field', () => {
    expect(() => compileConfigSchema(schema, 'p').validate({ dir: 1, mode: 'c' }, 'destination "d"')).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_CONFIG_INVALID',
        message: expect.stringMatching(
          /\/dir: must be string.*\/mode: must be equal to one of the allowed values: a, b/,
        ),
      }),
    );
  });

  it('refuses a schema that does not compile', () => {
    expect(() => compileConfigSchema({ type: 'object', properties: { x: { type: 'strnig' } } }, 'p')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID' }),
    );
    expect(() => compileConfigSchema([], 'p')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID' }),
    );
  });
});

describe('host range and api version', () => {
  it('accept a matching host and refuse others with their codes', () => {
    expect(() => checkHostRange(manifest, '0.1.5', 'p')).not.toThrow();
    expect(() => checkHostRange(manifest, '1.0.0', 'p')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_HOST_RANGE' }),
    );
    expect(() => checkHostRange({ ...manifest, host: 'not a range!' }, '0.1.0', 'p')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_MANIFEST_INVALID' }),
    );
    expect(() => checkApiVersion(manifest, 'p')).not.toThrow();
    expect(() => checkApiVersion({ ...manifest, sdkApiVersion: 2 }, 'p')).toThrow(
      expect.objectContaining({ code: 'IC_ERR_PLUGIN_API_VERSION' }),
    );
  });
});
