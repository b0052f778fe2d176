import type { PresentationDataItem, SessionDataItem, SystemInformationItem } from './items.js';

/**
 * Where the host leaves a model's JSON text on an item that crossed to a plugin's worker. `Symbol.for`, so that a
 * plugin's own copy of this SDK finds what the host's copy put there.
 */
export const MODEL_JSON: unique symbol = Symbol.for('@integration-client/plugin-sdk:model-json') as never;

/** An item that carries a session or presentation model. */
export type ModelItem = SessionDataItem | SystemInformationItem | PresentationDataItem;

/**
 * The item's model as JSON text: exactly `JSON.stringify(item.session)` (or `item.presentation`) as the model
 * arrived. In a worker (the host's default isolation) the model crossed the thread boundary as this very text, so
 * it is handed on as is — neither parsed nor serialised again — and the model object is only parsed if the handler
 * reads `item.session` / `item.presentation`. A plugin that stores or sends JSON (a file of JSON lines, a
 * document store, a webhook) should take this instead of `JSON.stringify(item.session)`; with `item.lsid` for
 * its keys, isolation then costs it next to nothing. Changes a handler makes to the model object are not in the
 * text: it is the model as the host sent it.
 */
export function modelJson(item: ModelItem): string {
  const text = (item as { [MODEL_JSON]?: unknown })[MODEL_JSON];
  if (typeof text === 'string') return text;
  return JSON.stringify(item.operation === 'presentation-data' ? item.presentation : item.session);
}
