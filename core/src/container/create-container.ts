import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import { SettingsValidator } from '../settings/settings-validator.js';
import { TOKENS } from './tokens.js';

/** What the composition root provides. */
export interface ContainerOptions {
  readonly logger: Logger;
  readonly hostVersion: string;
}

/**
 * A child container with the kernel's services registered. The host is the only composition root; it calls this
 * once per process (or per run where scoping helps). Plugins never see the container.
 */
export function createContainer(options: ContainerOptions): DependencyContainer {
  const c = rootContainer.createChildContainer();
  c.register(TOKENS.Logger, { useValue: options.logger });
  c.register(TOKENS.HostVersion, { useValue: options.hostVersion });
  c.register(TOKENS.SettingsValidator, { useValue: new SettingsValidator() });
  return c;
}
