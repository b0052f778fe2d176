import { describe, expect, it } from 'vitest';
import type { PresentationDataItem, SessionDataItem } from './items.js';
import { MODEL_JSON, modelJson } from './model-json.js';
import { sampleItem } from './testing/sample-items.js';

describe('modelJson', () => {
  it('serialises the model of an item that did not cross a worker boundary', () => {
    const s = sampleItem('session-data', { lsid: 'm-1' }).item as SessionDataItem;
    expect(modelJson(s)).toBe(JSON.stringify(s.session));
    expect(s.lsid).toBe(s.session.lsid);
    const p = sampleItem('presentation-data', { lsid: 'p-1' }).item as PresentationDataItem;
    expect(modelJson(p)).toBe(JSON.stringify(p.presentation));
    expect(p.lsid).toBe('p-1');
  });

  it('hands on the text the host left on the item, untouched', () => {
    const s = sampleItem('session-data').item as SessionDataItem;
    const text = '{"lsid":"as-it-crossed"}';
    expect(modelJson(Object.assign({}, s, { [MODEL_JSON]: text }))).toBe(text);
    // The symbol is shared by every copy of the SDK in a thread.
    expect(MODEL_JSON).toBe(Symbol.for('@integration-client/plugin-sdk:model-json'));
  });
});
