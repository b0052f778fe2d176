/** `service.json` in the data directory: the running service's pid and health URL (written by `ic service run`). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServiceState {
  pid: number;
  startedAt: string;
  healthUrl: string;
  home: string;
}

export const stateFile = (home: string) => join(home, 'service.json');

/** Whether `pid` runs: exists and, where /proc tells, is not a zombie (a container's init may never reap one). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true; // no /proc here, or the process just ended: kill(0) is the answer
  }
}

/**
 * Whether `pid` runs `ic service run` (its command line, where /proc tells). A service killed without cleaning up
 * leaves its pid in service.json, and another program can get that pid later — a restarted container hands out
 * the same low pids, even to the new service itself, which then refused to start "because a service runs".
 */
function isService(pid: number): boolean {
  if (pid === process.pid) return false; // this process reads the file: it is not the one that wrote it
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes('service') && args.includes('run');
  } catch {
    return true; // no /proc here: alive() is the answer
  }
}

/** The state of the service running on `home`, or undefined when none is. */
export function runningService(home: string): ServiceState | undefined {
  const file = stateFile(home);
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as ServiceState;
  return alive(state.pid) && isService(state.pid) ? state : undefined;
}
