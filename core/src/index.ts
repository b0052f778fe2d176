/** @integration-client/core — the kernel: container, logging, settings validation. */
export * from './container/tokens.js';
export * from './container/create-container.js';
export * from './logging/create-logger.js';
export * from './logging/redaction.js';
export * from './settings/settings-validator.js';
