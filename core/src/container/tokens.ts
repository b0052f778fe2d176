/**
 * Injection tokens. Every constructor parameter carries `@inject(TOKEN)` explicitly, so resolution does not
 * depend on emitted decorator metadata (esbuild-based tools such as tsx and vitest emit none).
 */
export const TOKENS = {
  /** The root pino logger. */
  Logger: Symbol.for('ic.Logger'),
  /** Validates settings objects against the JSON Schemas. */
  SettingsValidator: Symbol.for('ic.SettingsValidator'),
  /** The running host's version string. */
  HostVersion: Symbol.for('ic.HostVersion'),
} as const;
