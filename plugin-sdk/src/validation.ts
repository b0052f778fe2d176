import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { FormatsPlugin } from 'ajv-formats';
import { ConfigError } from './errors/index.js';

/**
 * ajv and ajv-formats, loaded on the first createAjv() (both are CommonJS). Loading them takes ~100 ms, and every
 * module that imports this SDK — each plugin, in each plugin worker — paid it at start-up, though a plugin worker
 * never validates anything (the host hands it checked facts).
 */
let ajvLib: { Ajv: typeof Ajv; addFormats: FormatsPlugin } | undefined;
function loadAjv(): NonNullable<typeof ajvLib> {
  if (!ajvLib) {
    const require = createRequire(import.meta.url);
    ajvLib = {
      Ajv: (require('ajv') as { Ajv: typeof Ajv }).Ajv,
      addFormats: (require('ajv-formats') as { default: FormatsPlugin }).default,
    };
  }
  return ajvLib;
}

/** One schema violation, with a JSON pointer to the offending value. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

/** A new ajv instance with formats, strict schema checking and every error reported. */
export function createAjv(options: Options = {}): Ajv {
  const { Ajv, addFormats } = loadAjv();
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, ...options });
  ajv.addKeyword({ keyword: 'x-widget' });
  addFormats(ajv);
  return ajv;
}

/** Turns ajv errors into readable issues such as `/customers/0/gsnumber: must be integer`. */
export function toIssues(errors: readonly ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((e) => {
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`
        : e.keyword === 'enum'
          ? `: ${(e.params as { allowedValues?: unknown[] }).allowedValues?.join(', ')}`
          : '';
    return { path: e.instancePath || '/', message: `${e.message ?? 'is invalid'}${extra}` };
  });
}

/** Formats issues as one line each. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

/**
 * Validates `value` with a compiled schema; throws IC_ERR_CONFIG_INVALID naming every bad field otherwise.
 * `what` names the thing validated, e.g. `site "main"`.
 */
export function checkValid<T>(validate: ValidateFunction, value: unknown, what: string): T {
  if (validate(value)) return value as T;
  const issues = toIssues(validate.errors);
  throw new ConfigError(`${what} is invalid: ${formatIssues(issues)}`, { details: { errors: issues } });
}
