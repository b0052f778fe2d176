import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { FormatsPlugin } from 'ajv-formats';
import { ConfigError } from './errors/index.js';
import { lazyRequire } from './lazy-require.js';

// Loaded on the first createAjv(): a plugin worker never validates (the host hands it checked facts).
const ajvModule = lazyRequire<{ Ajv: typeof Ajv }>('ajv');
const formatsModule = lazyRequire<{ default: FormatsPlugin }>('ajv-formats');

/** One schema violation, with a JSON pointer to the offending value. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * A new ajv instance with formats, strict schema checking and every error reported. `verbose`: each error carries
 * its schema, whose description toIssues() gives for a value that does not match a pattern.
 */
export function createAjv(options: Options = {}): Ajv {
  const ajv = new (ajvModule().Ajv)({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    verbose: true,
    ...options,
  });
  ajv.addKeyword({ keyword: 'x-widget' });
  formatsModule().default(ajv);
  return ajv;
}

/**
 * Turns ajv errors into readable issues such as `/customers/0/gsnumber: must be integer`. A value that does not
 * match its pattern is explained by the first sentence of the field's description, not the regular expression: `/host: is not valid
 * (Host name of the site, optionally with :port, without https://)`. Values are never repeated (one may be secret).
 */
export function toIssues(errors: readonly ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((e) => {
    const description = (e.parentSchema as { description?: unknown } | undefined)?.description;
    if (e.keyword === 'pattern' && typeof description === 'string')
      return { path: e.instancePath || '/', message: `is not valid (${firstSentence(description)})` };
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`
        : e.keyword === 'enum'
          ? `: ${(e.params as { allowedValues?: unknown[] }).allowedValues?.join(', ')}`
          : '';
    return { path: e.instancePath || '/', message: `${e.message ?? 'is invalid'}${extra}` };
  });
}

/** A description's first sentence, without its full stop: what a value must be, not the whole help. */
const firstSentence = (text: string): string => text.split(/(?<!\b(?:e\.g|i\.e|etc))\.(?:\s|$)/)[0]!;

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
