import { describe, expect, it } from 'vitest';
import { DestinationGate } from './destination-gate.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('DestinationGate', () => {
  it('lets everyone call while nobody holds it', () => {
    const gate = new DestinationGate<object>();
    expect(gate.waitFor({})).toBeUndefined();
  });

  it('starts a holder only once the calls in flight have left, and holds the others back until it is done', async () => {
    const gate = new DestinationGate<object>();
    const [a, b] = [{ name: 'a' }, { name: 'b' }];
    const events: string[] = [];
    gate.entered(); // b's call, in the plugin
    let finish!: () => void;
    const holding = gate.alone(a, async () => {
      events.push('a alone');
      expect(gate.waitFor(a)).toBeUndefined(); // the holder's own calls go in
      await new Promise<void>((resolve) => (finish = resolve));
      return 7;
    });
    await tick();
    expect(events).toEqual([]); // b's call is still in
    const held = gate.waitFor(b);
    expect(held).toBeInstanceOf(Promise);
    void held!.then(() => events.push('b may call'));
    gate.left();
    await tick();
    expect(events).toEqual(['a alone']);
    finish();
    expect(await holding).toBe(7);
    await tick();
    expect(events).toEqual(['a alone', 'b may call']);
    expect(gate.waitFor(b)).toBeUndefined();
  });

  it('gives holders turns, one after the other, and opens even when the work fails', async () => {
    const gate = new DestinationGate<object>();
    const [a, b] = [{}, {}];
    const order: string[] = [];
    let finishA!: () => void;
    const first = gate.alone(a, async () => {
      order.push('a in');
      await new Promise<void>((resolve) => (finishA = resolve));
      order.push('a out');
      throw new Error('a failed');
    });
    const second = gate.alone(b, () => {
      order.push('b in');
      return Promise.resolve();
    });
    await tick();
    expect(order).toEqual(['a in']);
    finishA();
    await expect(first).rejects.toThrow('a failed');
    await second;
    expect(order).toEqual(['a in', 'a out', 'b in']);
    expect(gate.waitFor(a)).toBeUndefined();
  });
});
