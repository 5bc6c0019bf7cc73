import { describe, expect, test } from 'bun:test';
import { checkHistory, checkRegister, explainViolation, type Operation } from './linearizability.ts';

let client = 0;
const w = (value: string, call: number, ret: number, key = 'x'): Operation => ({ client: client++, key, kind: 'write', value, call, ret });
const r = (value: string | null, call: number, ret: number, key = 'x'): Operation => ({ client: client++, key, kind: 'read', value, call, ret });

describe('linearizability checker', () => {
  test('sequential history', () => {
    expect(checkRegister([w('a', 0, 1), r('a', 2, 3), w('b', 4, 5), r('b', 6, 7)])).toBe(true);
  });
  test('read of the initial value', () => {
    expect(checkRegister([r(null, 0, 1), w('a', 2, 3)])).toBe(true);
  });
  test('stale read after a completed write is not linearizable', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, 3), r('a', 4, 5)])).toBe(false);
  });
  test('concurrent read may see either value', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, 10), r('a', 3, 4), r('b', 5, 6)])).toBe(true);
  });
  test('reads cannot go back in time', () => {
    // While b is in flight, one reader sees b and a later reader sees a again.
    expect(checkRegister([w('a', 0, 1), w('b', 2, 10), r('b', 3, 4), r('a', 5, 6)])).toBe(false);
  });
  test('a write with unknown outcome may or may not take effect', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('a', 3, 4)])).toBe(true);
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('b', 3, 4)])).toBe(true);
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('b', 3, 4), r('a', 5, 6)])).toBe(false);
  });
  test('a value never written cannot be read', () => {
    expect(checkRegister([w('a', 0, 1), r('z', 2, 3)])).toBe(false);
  });
  test('keys are independent registers', () => {
    const ok = checkHistory([w('a', 0, 1, 'k1'), w('b', 0, 1, 'k2'), r('a', 2, 3, 'k1'), r('b', 2, 3, 'k2')]);
    expect(ok.ok).toBe(true);
    const bad = checkHistory([w('a', 0, 1, 'k1'), w('b', 0, 1, 'k2'), r('b', 2, 3, 'k1')]);
    expect(bad.ok).toBe(false);
  });
  test('large concurrent history completes thanks to memoization', () => {
    const ops: Operation[] = [];
    for (let i = 0; i < 200; i++) ops.push(w(`v${i}`, i * 2, i * 2 + 5));
    for (let i = 0; i < 200; i++) ops.push(r(`v${i}`, i * 2 + 3, i * 2 + 4));
    expect(checkRegister(ops)).toBe(true);
  });

  test('a violation is narrowed to the first failing prefix', () => {
    const ops = [w('a', 0, 1), r('a', 2, 3), w('b', 4, 5), r('a', 6, 7), w('c', 8, 9), r('c', 10, 11)];
    const why = explainViolation(ops);
    expect(why.atTime).toBe(7);
    expect(why.ops[why.ops.length - 1]!.value).toBe('a');
  });
});
