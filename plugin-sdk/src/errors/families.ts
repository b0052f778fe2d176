import type { ErrorCode } from './error-codes.js';
import { IcError, type IcErrorOptions } from './ic-error.js';

/** A settings object or plugin config is invalid. `details.errors` lists `{ path, message }`. */
export class ConfigError extends IcError {
  constructor(message: string, options: IcErrorOptions = {}) {
    super('IC_ERR_CONFIG_INVALID', message, options);
  }
}

/** A named thing does not exist. */
export class NotFoundError extends IcError {
  constructor(message: string, options: IcErrorOptions = {}) {
    super('IC_ERR_NOT_FOUND', message, options);
  }
}

/** Talking to an appliance failed. `status` is the HTTP status when there was one. */
export class SiteAccessError extends IcError {
  readonly status: number | undefined;
  constructor(
    code: ErrorCode & `IC_ERR_SITE_${string}`,
    message: string,
    options: IcErrorOptions & { status?: number } = {},
  ) {
    super(code, message, options);
    this.status = options.status;
  }
}

/** A destination could not store an item. Plugins throw these; `retryable` decides whether the item is tried again. */
export class DestinationError extends IcError {
  constructor(code: ErrorCode & `IC_ERR_DESTINATION_${string}`, message: string, options: IcErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A plugin package failed one of the checks made before (or while) its code runs. */
export class PluginError extends IcError {
  constructor(code: ErrorCode & `IC_ERR_PLUGIN_${string}`, message: string, options: IcErrorOptions = {}) {
    super(code, message, options);
  }
}
