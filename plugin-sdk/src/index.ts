/**
 * @integration-client/plugin-sdk — the contract destination plugins are written against.
 * It depends on nothing of the host's; see docs/writing-a-plugin.md.
 */
export * from './errors/index.js';
export * from './operations.js';
export * from './items.js';
export * from './model-json.js';
export * from './ack.js';
export * from './check-result.js';
export * from './context.js';
export * from './define-destination.js';
export * from './manifest.js';
export * from './config-schema.js';
export * from './validation.js';
export * from './version.js';
export type { Session, Presentation, SessionEvent } from '@integration-client/schemas';
export * from './plugin-package.js';
export * from './connection-string.js';
export * from './make-directory.js';
