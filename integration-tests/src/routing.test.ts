/** A transfer that routes a data type to a destination that does not declare it is refused, with the reason. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilitiesOf, checkRouting } from '@integration-client/core';
import { readManifestFrom } from '@integration-client/plugin-sdk';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

const manifest = (dir: string) =>
  capabilitiesOf(readManifestFrom(JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')), dir));
const destinations = new Map([
  ['archive-db', manifest('plugins/sql')],
  ['files', manifest('plugins/file-system')],
]);
const schedule = (transfers: { site: string; destination: string; dataTypes: string[] }[]) =>
  ({ name: 'nightly', transfers }) as Parameters<typeof checkRouting>[0];

describe('transfer routing against plugin manifests', () => {
  it('refuses recordings and backups to the SQL plugin, saying why and what to do', () => {
    expect(() =>
      checkRouting(
        schedule([
          { site: 'main', destination: 'files', dataTypes: ['session-data', 'session-recording', 'site-backup'] },
          { site: 'main', destination: 'archive-db', dataTypes: ['session-data', 'session-recording', 'site-backup'] },
        ]),
        (n) => destinations.get(n),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED',
        retryable: false,
        message: expect.stringMatching(
          /transfer 2: destination "archive-db" \(plugin sql\) does not take session-recording, site-backup; it declares session-data, system-information\. Recordings and site backups cannot be stored in a SQL database/,
        ),
      }),
    );
  });

  it('accepts what each plugin declares, and refuses system information to the file system', () => {
    const ok = schedule([
      { site: 'main', destination: 'archive-db', dataTypes: ['session-data', 'system-information'] },
      { site: 'main', destination: 'files', dataTypes: ['session-data', 'show-my-screen-recording', 'site-backup'] },
    ]);
    expect(() => checkRouting(ok, (n) => destinations.get(n))).not.toThrow();
    expect(() =>
      checkRouting(schedule([{ site: 'main', destination: 'files', dataTypes: ['system-information'] }]), (n) =>
        destinations.get(n),
      ),
    ).toThrow(expect.objectContaining({ message: expect.stringMatching(/Remove them from the transfer/) }));
  });
});
