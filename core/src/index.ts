/** @integration-client/core — the kernel: container, logging, settings validation, appliance access, report parsing. */
export * from './container/tokens.js';
export * from './container/create-container.js';
export * from './logging/create-logger.js';
export * from './logging/redaction.js';
export * from './settings/settings-validator.js';
export * from './site/api-names.js';
export * from './report/report-parser.js';
export * from './report/xml-names.js';
export * from './site/site-client.js';
export * from './site/appliance-api.js';
export * from './site/retry-policy.js';
export * from './secrets/secret-box.js';
export * from './settings-db/settings-db.js';
export * from './engine/transfer-engine.js';
export * from './engine/destinations.js';
export * from './engine/schedule-runner.js';
export * from './engine/scheduler.js';
