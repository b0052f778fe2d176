import { PluginError } from './errors/index.js';

/** One line of a connection test, readable by a person. */
export interface CheckStep {
  readonly name: string;
  readonly ok: boolean;
  readonly message: string;
}

/** Result of a destination's `check()`: ok only when every step is. */
export interface CheckResult {
  readonly ok: boolean;
  readonly steps: readonly CheckStep[];
}

/** Builds a CheckResult whose `ok` follows its steps. */
export function checkResult(steps: readonly CheckStep[]): CheckResult {
  return { ok: steps.length > 0 && steps.every((s) => s.ok), steps };
}

/** Throws IC_ERR_PLUGIN_CHECK_INVALID unless `value` is a well-formed CheckResult. */
export function checkCheckResult(value: unknown, where: string): CheckResult {
  const v = value as Partial<CheckResult> | null;
  const ok =
    typeof v === 'object' &&
    v !== null &&
    typeof v.ok === 'boolean' &&
    Array.isArray(v.steps) &&
    v.steps.every(
      (s: Partial<CheckStep>) =>
        typeof s?.name === 'string' && typeof s.ok === 'boolean' && typeof s.message === 'string',
    );
  if (!ok)
    throw new PluginError(
      'IC_ERR_PLUGIN_CHECK_INVALID',
      `${where} resolved to ${JSON.stringify(value)}, not a CheckResult { ok, steps[] }`,
    );
  return value as CheckResult;
}
