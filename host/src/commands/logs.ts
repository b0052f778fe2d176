import { createReadStream, statSync } from 'node:fs';
import { ConfigError } from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import { icHome, openApp } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { atLeast, levelNumber, logFiles, readable, tailLines, type LogKind } from '../logs.js';
import { out } from '../output.js';
import type { HomeOptions } from './common.js';

interface LogsOptions extends HomeOptions {
  service?: boolean;
  follow?: boolean;
  lines: string;
  level?: string;
}

export function logsCommand(ic: Command): void {
  ic.command('logs')
    .description('print the client log (or the service log) readably')
    .option('--service', 'the service log instead of the client log')
    .option('-f, --follow', 'keep printing new lines (across daily rolls) until interrupted')
    .option('-n, --lines <n>', 'lines from the end to start with', '50')
    .option('--level <level>', 'only lines at this level or above: trace, debug, info, warn, error or fatal')
    .option('--json', 'print the JSON lines as they are')
    .addHelpText(
      'after',
      '\nExamples:\n  ic logs -n 200\n  ic logs --service --level warn -n 20\n  ic logs --service --follow',
    )
    .action(async (o: LogsOptions, cmd: Command) => {
      if (!/^\d+$/.test(o.lines)) throw new ConfigError(`-n ${o.lines} is not a number of lines; e.g. -n 200`);
      const min = o.level === undefined ? 0 : levelNumber(o.level);
      if (min === undefined)
        throw new ConfigError(`--level ${o.level} is not a level; use trace, debug, info, warn, error or fatal`);
      const home = icHome(cmd.optsWithGlobals<HomeOptions>().home);
      const app = await openApp(home);
      const dir = app.logDir; // as openApp worked it out from the settings in effect
      await app.close();
      const kind: LogKind = o.service ? 'service' : 'client';
      const show = (line: string) => line && atLeast(line, min) && out.line(o.json ? line : readable(line));
      const files = logFiles(dir, kind);
      if (!files.length && !o.follow) {
        out.line(`no ${kind} log yet in ${dir}`);
        process.exitCode = EXIT.ok;
        return;
      }
      for (const l of tailLines(files, Number(o.lines), (line) => atLeast(line, min))) show(l);
      if (!o.follow) {
        process.exitCode = EXIT.ok;
        return;
      }
      let file = files.at(-1);
      let offset = file ? statSync(file).size : 0;
      let rest = '';
      const poll = async () => {
        const newest = logFiles(dir, kind).at(-1);
        if (newest && newest !== file) {
          file = newest;
          offset = 0;
        }
        if (!file) return;
        const size = statSync(file).size;
        if (size <= offset) return;
        const chunks: Buffer[] = [];
        for await (const c of createReadStream(file, { start: offset, end: size - 1 })) chunks.push(c as Buffer);
        offset = size;
        const text = rest + Buffer.concat(chunks).toString('utf8');
        const parts = text.split('\n');
        rest = parts.pop() ?? '';
        parts.forEach(show);
      };
      const timer = setInterval(() => void poll(), 250);
      await new Promise<void>((done) => process.once('SIGINT', done).once('SIGTERM', done));
      clearInterval(timer);
      process.exitCode = EXIT.ok;
    });
}
