import type { ValidateFunction } from 'ajv';
import { PluginError } from './errors/index.js';
import { checkValid, createAjv } from './validation.js';

/** A plugin's compiled config schema. */
export interface ConfigSchema {
  readonly schema: Readonly<Record<string, unknown>>;
  /** Top-level property names marked `writeOnly: true`: secrets, stored encrypted and never shown. */
  readonly secretFields: readonly string[];
  /** Validates a config (applying defaults to a copy) and returns it frozen; throws IC_ERR_CONFIG_INVALID. */
  validate<C = Record<string, unknown>>(config: unknown, what: string): Readonly<C>;
}

/**
 * Compiles a plugin's config JSON Schema in strict mode. Throws IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID when it is
 * not an object schema ajv accepts.
 */
export function compileConfigSchema(schema: unknown, where: string): ConfigSchema {
  if (typeof schema !== 'object' || schema === null || (schema as { type?: unknown }).type !== 'object') {
    throw new PluginError(
      'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID',
      `${where}: the config schema must be a JSON Schema object with "type": "object".`,
    );
  }
  let validate: ValidateFunction;
  try {
    validate = createAjv({ useDefaults: true }).compile(schema);
  } catch (err) {
    throw new PluginError(
      'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID',
      `${where}: the config schema does not compile: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const properties = ((schema as { properties?: Record<string, { writeOnly?: boolean }> }).properties ?? {}) as Record<
    string,
    { writeOnly?: boolean }
  >;
  const secretFields = Object.keys(properties).filter((k) => properties[k]?.writeOnly === true);
  return {
    schema: schema as Record<string, unknown>,
    secretFields,
    validate<C>(config: unknown, what: string): Readonly<C> {
      const copy: unknown = structuredClone(config ?? {});
      return Object.freeze(checkValid<C>(validate, copy, what));
    },
  };
}

/** Returns a copy of `config` with every secret field replaced by `"********"`, for display and logs. */
export function maskSecrets<C extends Record<string, unknown>>(config: C, secretFields: readonly string[]): C {
  const copy: Record<string, unknown> = { ...config };
  for (const k of secretFields) if (copy[k] !== undefined) copy[k] = '********';
  return copy as C;
}
