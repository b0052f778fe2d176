import { ERROR_CODES, type ErrorCode, type ErrorFamily } from './error-codes.js';

/** Options every IcError takes besides its code and message. */
export interface IcErrorOptions {
  readonly cause?: unknown;
  /** Structured facts for logs and `--json` output (never secrets). */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Overrides the catalogue's default. */
  readonly retryable?: boolean;
}

/**
 * Base class of every error the integration client raises. Across package boundaries test `err.code` (see
 * {@link isIcError}), not `instanceof`: a plugin may bundle its own copy of the SDK.
 */
export class IcError extends Error {
  readonly code: ErrorCode;
  readonly family: ErrorFamily;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: IcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.family = ERROR_CODES[code].family;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    this.details = options.details;
  }
}

/** An error shaped like an IcError: an object with a catalogued `code`, a message and `retryable`. */
export interface IcErrorLike {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly details?: Readonly<Record<string, unknown>> | undefined;
}

/** True for any error carrying an `IC_ERR_*` code from the catalogue, whichever SDK copy created it. */
export function isIcError(err: unknown): err is IcErrorLike & Error {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; retryable?: unknown };
  return (
    typeof e.code === 'string' &&
    e.code in ERROR_CODES &&
    typeof e.message === 'string' &&
    typeof e.retryable === 'boolean'
  );
}

/**
 * Returns `err` when it is already coded; otherwise wraps it under `fallback` (the original kept as `cause`).
 * Used at every boundary where foreign errors enter (plugin calls, HTTP, databases).
 */
export function toIcError(err: unknown, fallback: ErrorCode, message?: string): IcErrorLike & Error {
  if (isIcError(err)) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new IcError(fallback, message ? `${message}: ${text}` : text, { cause: err });
}

/** Plain, structured-clone friendly form of an error, for crossing a worker or process boundary. */
export interface SerializedIcError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Serialises any error to its coded plain form (uncoded errors become `fallback`). */
export function serializeIcError(err: unknown, fallback: ErrorCode = 'IC_ERR_INTERNAL'): SerializedIcError {
  const e = toIcError(err, fallback);
  return { code: e.code, message: e.message, retryable: e.retryable, ...(e.details ? { details: e.details } : {}) };
}

/** Rebuilds an IcError from its serialised form. */
export function deserializeIcError(s: SerializedIcError): IcError {
  return new IcError(s.code, s.message, { retryable: s.retryable, ...(s.details ? { details: s.details } : {}) });
}
