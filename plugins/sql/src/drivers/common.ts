import type { TableName } from '../schema.js';
import { insertColumns } from '../schema.js';

/** Positions of `time` columns in a row of `table`. */
export function timeColumns(table: TableName): number[] {
  return insertColumns(table).flatMap((c, i) => (c.kind === 'time' ? [i] : []));
}

/**
 * Wraps a transaction runner so that transactions run one after another (drivers whose `writers` is 1: one
 * connection's worth of work at a time).
 */
export function serialized<F extends (fn: never) => Promise<unknown>>(run: F): F {
  let tail: Promise<unknown> = Promise.resolve();
  return ((fn: never) => {
    const next = tail.then(
      () => run(fn),
      () => run(fn),
    );
    tail = next.catch(() => undefined);
    return next;
  }) as F;
}
