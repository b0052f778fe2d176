/**
 * JSON Schemas of the integration client (session and presentation models, plugin manifest, settings objects)
 * and the TypeScript types generated from them. The `.schema.json` files in `json/` are the source of truth.
 */
export * from './generated/index.js';
