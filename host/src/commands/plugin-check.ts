import { runConformance, type ConformanceReport } from '@integration-client/plugin-sdk/testing';
import { EXIT } from '../exit-codes.js';
import { HOST_VERSION } from '../host-version.js';
import { out } from '../output.js';
import { readJsonArg } from './common.js';

/** Options of `ic plugin check`. */
export interface PluginCheckOptions {
  readonly config: string;
  readonly json?: boolean;
}

function print(report: ConformanceReport): void {
  for (const c of report.checks)
    out.line(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.ok ? '' : `\n     ${c.code}: ${c.message}`}`);
  out.line(
    report.ok
      ? `\n${report.pluginId} conforms.`
      : `\n${report.codes.length} check(s) failed: ${report.codes.join(', ')}`,
  );
}

/** `ic plugin check <dir>`: runs the SDK conformance suite on a plugin package. */
export async function pluginCheck(dir: string, options: PluginCheckOptions): Promise<number> {
  const config = await readJsonArg(options.config, '--config');
  const report = await runConformance({ packageDir: dir, config, hostVersion: HOST_VERSION });
  if (options.json) out.json(report);
  else print(report);
  return report.ok ? EXIT.ok : EXIT.failed;
}
