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

/** The state of the service running on `home`, or undefined when none is. */
export function runningService(home: string): ServiceState | undefined {
  const file = stateFile(home);
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as ServiceState;
  return alive(state.pid) ? state : undefined;
}
