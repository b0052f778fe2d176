import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Readable } from 'node:stream';
import { createLogger, SiteClient, type SiteClientOptions } from '@integration-client/core';
import type { pino } from 'pino';
import { ApplianceSimulator, binaryChunks, type SimulatorOptions } from './simulator/index.js';

/** Log lines a test can inspect. */
export interface CapturedLogger {
  readonly logger: ReturnType<typeof createLogger>;
  readonly lines: Record<string, unknown>[];
}

export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
    } as unknown as pino.DestinationStream,
  });
  return { logger, lines };
}

/** Fast retries so fault tests take milliseconds. */
export const FAST_RETRY = { attempts: 4, baseMs: 5, maxMs: 1500 };

/** A started simulator (HTTPS unless told otherwise) and a client trusting its CA. */
export async function simulatorAndClient(
  sim: SimulatorOptions = {},
  client: Partial<SiteClientOptions> & { site?: Partial<SiteClientOptions['site']> } = {},
): Promise<{ sim: ApplianceSimulator; client: SiteClient; log: CapturedLogger; close: () => Promise<void> }> {
  const s = new ApplianceSimulator(sim);
  const a = await s.start();
  const log = captureLogger();
  const c = await SiteClient.create({
    logger: log.logger,
    retry: FAST_RETRY,
    ...client,
    site: {
      host: a.host,
      clientId: a.clientId,
      clientSecret: a.clientSecret,
      caFile: ApplianceSimulator.caFile,
      ...client.site,
    },
  });
  return { sim: s, client: c, log, close: async () => (await c.close(), await s.stop()) };
}

/** sha256 of a stream. */
export async function sha256(stream: Readable): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hash: h.digest('hex'), bytes };
}

/** sha256 of what the simulator serves for (total, salt). */
export function expectedSha256(total: number, salt: number): string {
  const h = createHash('sha256');
  for (const c of binaryChunks(total, salt)) h.update(c);
  return h.digest('hex');
}

/** A full garbage collection now (for tests that check nothing keeps an object alive through a WeakRef). */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
