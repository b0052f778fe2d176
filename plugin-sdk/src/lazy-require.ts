import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS module loaded on the first call of the returned function, not when this SDK is imported. Every plugin
 * imports the SDK in its worker at start-up; ajv and semver cost ~100 ms there and a worker uses neither.
 */
export function lazyRequire<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(specifier) as T);
}
