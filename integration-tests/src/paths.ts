import { fileURLToPath } from 'node:url';

/** Absolute path of a fixture package under integration-tests/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** Absolute path of the built `ic` binary. */
export const IC_BIN = fileURLToPath(new URL('../../host/dist/cli.js', import.meta.url));

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
