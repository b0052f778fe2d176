import { describe, expect, it } from 'vitest';
import { ConfigError, DestinationError, PluginError, SiteAccessError } from './families.js';
import { deserializeIcError, IcError, isIcError, serializeIcError, toIcError } from './ic-error.js';

describe('IcError', () => {
  it('takes family and retryability from the catalogue unless overridden', () => {
    const e = new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', 'disk full');
    expect([e.code, e.family, e.retryable]).toEqual(['IC_ERR_DESTINATION_WRITE_FAILED', 'destination', true]);
    expect(new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', 'x', { retryable: false }).retryable).toBe(false);
    expect(new ConfigError('bad').code).toBe('IC_ERR_CONFIG_INVALID');
    expect(new SiteAccessError('IC_ERR_SITE_FORBIDDEN', 'no', { status: 403 }).status).toBe(403);
  });

  it('is recognised by code, not by class, so another SDK copy interoperates', () => {
    const foreign = Object.assign(new Error('from another copy'), {
      code: 'IC_ERR_PLUGIN_LOAD_FAILED',
      retryable: false,
    });
    expect(isIcError(foreign)).toBe(true);
    expect(isIcError(Object.assign(new Error('x'), { code: 'ENOENT', retryable: false }))).toBe(false);
    expect(isIcError('IC_ERR_INTERNAL')).toBe(false);
  });

  it('wraps foreign errors once, keeping the cause', () => {
    const cause = new Error('socket hang up');
    const wrapped = toIcError(cause, 'IC_ERR_PLUGIN_ERROR_UNCODED', 'plugin jsonl failed');
    expect(wrapped.code).toBe('IC_ERR_PLUGIN_ERROR_UNCODED');
    expect(wrapped.message).toBe('plugin jsonl failed: socket hang up');
    expect(wrapped.cause).toBe(cause);
    const coded = new PluginError('IC_ERR_PLUGIN_HOST_RANGE', 'x');
    expect(toIcError(coded, 'IC_ERR_INTERNAL')).toBe(coded);
  });

  it('survives a structured clone through its serialised form', () => {
    const s = serializeIcError(
      new DestinationError('IC_ERR_DESTINATION_BAD_ITEM', 'too long', { details: { field: 'body' } }),
    );
    const back = deserializeIcError(structuredClone(s));
    expect(back).toBeInstanceOf(IcError);
    expect([back.code, back.message, back.retryable, back.details]).toEqual([
      'IC_ERR_DESTINATION_BAD_ITEM',
      'too long',
      false,
      { field: 'body' },
    ]);
    expect(serializeIcError(new TypeError('boom')).code).toBe('IC_ERR_INTERNAL');
  });
});
