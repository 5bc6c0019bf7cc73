import { describe, expect, test } from 'bun:test';
import { decodeConfChange, encodeConfChange } from './confchange-codec.ts';
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.ts';
import { enc, entry } from './node.test-helper.ts';
import { MemoryStorage } from './storage.ts';

describe('MemoryStorage', () => {
  test('append, overwrite a suffix, read with a byte limit', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 'aaaa'), entry(2, 1, 'bbbb'), entry(3, 1, 'cccc')]);
    s.append([entry(3, 2, 'dddd'), entry(4, 2, 'eeee')]);
    expect(s.lastIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(s.entries(1, 5).map((e) => e.term)).toEqual([1, 1, 2, 2]);
    expect(s.entries(1, 5, 41).length).toBe(2); // 20 bytes per entry (4 data + 16 overhead)
    expect(s.entries(1, 5, 1).length).toBe(1); // always at least one
    expect(() => s.entries(1, 7)).toThrow(UnavailableError);
  });

  test('snapshot, compact and apply a leader snapshot', () => {
    const s = MemoryStorage.withConf({ voters: ['a'], learners: [] });
    s.append([entry(1, 1), entry(2, 1), entry(3, 2)]);
    const snap = s.createSnapshot(2, { voters: ['a', 'b'], learners: [] }, enc('sm'));
    expect(snap.meta).toEqual({ index: 2, term: 1, conf: { voters: ['a', 'b'], learners: [] } });
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(1);
    expect(() => s.term(1)).toThrow(CompactedError);
    expect(() => s.createSnapshot(1, { voters: [], learners: [] }, enc(''))).toThrow(SnapshotOutOfDateError);
    s.applySnapshot({ meta: { index: 10, term: 3, conf: { voters: ['x'], learners: [] } }, data: enc('new') });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 3]);
    expect(s.initialState().conf).toEqual({ voters: ['x'], learners: [] });
    expect(s.initialState().hardState.commit).toBe(10);
  });
});

describe('conf change codec', () => {
  test('round trips every change type, with and without context', () => {
    for (const cc of [
      { type: 'addVoter', node: 'node-1' },
      { type: 'addLearner', node: 'ünïcode' },
      { type: 'removeNode', node: 'n', context: enc('why') },
    ] as const) {
      expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    }
  });

  test('rejects truncated or corrupted input', () => {
    const good = encodeConfChange({ type: 'addVoter', node: 'abc' });
    expect(() => decodeConfChange(good.slice(0, 5))).toThrow();
    expect(() => decodeConfChange(good.slice(0, good.length - 1))).toThrow();
    const badType = good.slice();
    badType[1] = 9;
    expect(() => decodeConfChange(badType)).toThrow();
    const badLen = good.slice();
    badLen[5] = 200;
    expect(() => decodeConfChange(badLen)).toThrow();
  });
});
