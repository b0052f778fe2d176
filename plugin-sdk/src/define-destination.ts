import type { Ack } from './ack.js';
import type { CheckResult } from './check-result.js';
import type { CallOptions, PluginContext } from './context.js';
import type { ItemByOperation } from './items.js';
import type { Operation } from './operations.js';
import { SDK_API_VERSION } from './version.js';

/** A handler for one operation: store the item, then resolve to an Ack; reject with a coded error otherwise. */
export type Handler<Op extends Operation> = (item: ItemByOperation[Op], options: CallOptions) => Promise<Ack>;

/** The handlers of a destination, one per operation it declares. */
export type Handlers = { readonly [Op in Operation]?: Handler<Op> };

/** A live destination instance, made by a plugin's `create()` from a context. */
export interface Destination {
  /** Tests the connection/permissions and says what is wrong in words. */
  check(): Promise<CheckResult>;
  readonly handlers: Handlers;
  /** Releases pools, handles, timers. Called once; no handler is called after it. */
  close(): Promise<void>;
}

/** What a plugin author passes to {@link defineDestination}. */
export interface DestinationDefinition<Config> {
  /** Must equal the manifest's `id`. */
  readonly id: string;
  /** Builds an instance for one destination config. */
  create(context: PluginContext<Config>): Promise<Destination> | Destination;
}

const BRAND = 'integration-client.destination';

/** The branded, versioned object a plugin's entry module default-exports. */
export interface DestinationPlugin<Config = Record<string, unknown>> extends DestinationDefinition<Config> {
  readonly $brand: typeof BRAND;
  readonly apiVersion: number;
}

/**
 * Declares a destination plugin. The entry module of a plugin package default-exports the result.
 *
 * @example
 * export default defineDestination<MyConfig>({
 *   id: 'jsonl',
 *   create: (ctx) => ({ check, handlers: { 'session-data': async (item) => ({ status: 'written' }) }, close }),
 * });
 */
export function defineDestination<Config = Record<string, unknown>>(
  definition: DestinationDefinition<Config>,
): DestinationPlugin<Config> {
  return Object.freeze({ ...definition, $brand: BRAND, apiVersion: SDK_API_VERSION });
}

/** True for an object built by defineDestination() of any SDK copy with the same brand. */
export function isDestinationPlugin(value: unknown): value is DestinationPlugin {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<DestinationPlugin>;
  return (
    v.$brand === BRAND && typeof v.apiVersion === 'number' && typeof v.id === 'string' && typeof v.create === 'function'
  );
}
