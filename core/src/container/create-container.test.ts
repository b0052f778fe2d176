import { inject, injectable } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../logging/create-logger.js';
import { SettingsValidator } from '../settings/settings-validator.js';
import { createContainer } from './create-container.js';
import { TOKENS } from './tokens.js';

@injectable()
class NeedsKernel {
  constructor(
    @inject(TOKENS.SettingsValidator) readonly settings: SettingsValidator,
    @inject(TOKENS.HostVersion) readonly version: string,
  ) {}
}

describe('createContainer', () => {
  it('resolves kernel services through explicit tokens', () => {
    const c = createContainer({ logger: createLogger({ level: 'silent' }), hostVersion: '0.1.0' });
    const k = c.resolve(NeedsKernel);
    expect(k.version).toBe('0.1.0');
    expect(k.settings).toBeInstanceOf(SettingsValidator);
    expect(c.resolve(TOKENS.SettingsValidator)).toBe(k.settings);
  });

  it('gives each call its own child container', () => {
    const a = createContainer({ logger: createLogger({ level: 'silent' }), hostVersion: '1' });
    const b = createContainer({ logger: createLogger({ level: 'silent' }), hostVersion: '2' });
    expect([a.resolve(TOKENS.HostVersion), b.resolve(TOKENS.HostVersion)]).toEqual(['1', '2']);
  });
});
