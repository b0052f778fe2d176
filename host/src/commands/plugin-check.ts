import { readFile } from 'node:fs/promises';
import { ConfigError } from '@integration-client/plugin-sdk';
import { runConformance, type ConformanceReport } from '@integration-client/plugin-sdk/testing';
import { EXIT } from '../exit-codes.js';
import { HOST_VERSION } from '../host-version.js';
import { out } from '../output.js';

/** Options of `ic plugin check`. */
export interface PluginCheckOptions {
  readonly config: string;
  readonly json?: boolean;
}

async function readConfig(arg: string): Promise<Record<string, unknown>> {
  const text = arg.trimStart().startsWith('{')
    ? arg
    : await readFile(arg, 'utf8').catch((err: Error) => {
        throw new ConfigError(`cannot read --config file ${arg}: ${err.message}`);
      });
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`--config is not valid JSON: ${(err as Error).message}`);
  }
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
  const config = await readConfig(options.config);
  const report = await runConformance({ packageDir: dir, config, hostVersion: HOST_VERSION });
  if (options.json) out.json(report);
  else print(report);
  return report.ok ? EXIT.ok : EXIT.failed;
}
