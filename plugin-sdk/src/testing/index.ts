/**
 * @integration-client/plugin-sdk/testing — a fake context, samples, and the conformance suite a plugin package
 * runs in its own tests. Test-framework agnostic: `runConformance()` returns a report.
 */
export * from './fake-context.js';
export * from './samples.js';
export * from './sample-items.js';
export * from './conformance.js';
