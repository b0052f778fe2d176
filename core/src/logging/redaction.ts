/** Keys whose values are secrets wherever they appear in a log object. */
export const SECRET_KEYS = [
  'clientSecret',
  'backupPassword',
  'password',
  'connectionString',
  'secret',
  'accessToken',
  'access_token',
  'authorization',
  'Authorization',
] as const;

/** How deep below the log object's top level a secret key is still found. */
const DEPTH = 4;

/**
 * pino `redact` paths for the given keys at every depth up to {@link DEPTH} (pino paths have no recursive
 * wildcard, so each depth is listed).
 */
export function redactPaths(keys: readonly string[] = SECRET_KEYS): string[] {
  const paths: string[] = [];
  for (const key of keys) {
    for (let depth = 0; depth <= DEPTH; depth++) paths.push([...Array<string>(depth).fill('*'), key].join('.'));
  }
  return paths;
}
