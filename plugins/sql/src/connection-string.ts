/** Connection strings are parsed by the plugin SDK (the host's settings database reads the same forms). */
export {
  parseConnectionString,
  sameDatabase,
  type Engine,
  type ParsedConnection,
} from '@integration-client/plugin-sdk';
