export * from './error-codes.js';
export * from './ic-error.js';
export * from './families.js';
