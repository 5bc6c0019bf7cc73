import { describe, expect, test } from 'bun:test';
import { type CasOp, casPending, casRegister, checkHistory, checkKey, type Model, narrowViolation, sawVersionBumps } from './linearizability.ts';

let client = 0;
const read = (value: string, version: number, call: number, ret: number, key = 'x'): CasOp => ({ client: client++, key, input: { f: 'read' }, output: { value, version }, call, ret });
const cas = (expect: number, value: string, output: 'ok' | 'mismatch' | 'fail' | 'unknown', call: number, ret: number, key = 'x'): CasOp => ({ client: client++, key, input: { f: 'cas', expect, value }, output, call, ret: output === 'unknown' ? Infinity : ret });
const check = (ops: CasOp[], bumps = false) => checkKey(casRegister('', bumps), ops).verdict;

describe('CAS register model', () => {
  test('a sequential history of reads and CAS writes is linearizable', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 3), read('a', 9, 4, 5), cas(9, 'b', 'ok', 6, 7), read('b', 12, 8, 9)])).toBe('ok');
  });

  test('a read after an acknowledged write that misses it (a stale read) is rejected', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 3), read('', 5, 4, 5)])).toBe('illegal');
  });

  test('an acknowledged write lost at the end (the final read shows the old value) is rejected', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 3), cas(5, 'b', 'mismatch', 4, 5), read('', 5, 10, 11)])).toBe('illegal');
  });

  test('two CAS writes from the same version cannot both succeed', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 6), cas(5, 'b', 'ok', 3, 7)])).toBe('illegal');
  });

  test('a 409 on the version just read, with nothing written in between, is rejected', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'mismatch', 2, 3)])).toBe('illegal');
    // …unless the system may raise versions on its own (then a 409 is always possible).
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'mismatch', 2, 3)], true)).toBe('ok');
  });

  test('a CAS refused for another reason than its version (400, never sent) says nothing of the version', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'fail', 2, 3), read('', 5, 4, 5)])).toBe('ok');
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'fail', 2, 3), read('a', 7, 4, 5)])).toBe('illegal');
  });

  test('concurrent CAS writes from one version: one wins, the other fails, reads see the winner', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'mismatch', 2, 8), cas(5, 'b', 'ok', 3, 7), read('b', 9, 4, 10)])).toBe('ok');
  });

  test('a read concurrent with a write may see either value, but reads do not go back in time', () => {
    const base = [read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 20)];
    expect(check([...base, read('', 5, 3, 4), read('a', 9, 5, 6)])).toBe('ok');
    expect(check([...base, read('a', 9, 3, 4), read('', 5, 5, 6)])).toBe('illegal');
  });

  test('a write of unknown outcome may take effect late, or never', () => {
    const base = [read('', 5, 0, 1), cas(5, 'a', 'unknown', 2, 0)];
    expect(check([...base, read('', 5, 3, 4)])).toBe('ok');
    expect(check([...base, read('a', 9, 30, 31)])).toBe('ok');
    expect(check([...base, read('', 5, 3, 4), read('a', 9, 40, 41)])).toBe('ok');
    expect(check([...base, read('a', 9, 3, 4), read('', 5, 40, 41)])).toBe('illegal');
  });

  test('a version never goes backwards, and a value read must have been written', () => {
    expect(check([read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 3), read('a', 4, 4, 5)])).toBe('illegal');
    expect(check([read('', 5, 0, 1), read('z', 6, 2, 3)])).toBe('illegal');
  });

  test('one value read with two versions is seen as the system raising versions', () => {
    expect(sawVersionBumps([read('', 5, 0, 1), read('', 7, 2, 3)])).toBe(true);
    expect(sawVersionBumps([read('', 5, 0, 1), read('', 5, 2, 3), read('', 7, 2, 3, 'y')])).toBe(false);
    // With bumps allowed, the later read of a higher version of one value is fine; lower is not.
    expect(check([read('', 5, 0, 1), read('', 7, 2, 3)], true)).toBe('ok');
    expect(check([read('', 7, 0, 1), read('', 5, 2, 3)], true)).toBe('illegal');
  });

  test('keys are checked apart: one bad key makes the history illegal', () => {
    const ok = checkHistory(casRegister(), [read('', 1, 0, 1, 'k1'), cas(1, 'a', 'ok', 2, 3, 'k1'), read('', 2, 0, 1, 'k2'), read('a', 4, 4, 5, 'k1')]);
    expect(ok.verdict).toBe('ok');
    const bad = checkHistory(casRegister(), [read('', 1, 0, 1, 'k1'), cas(1, 'a', 'ok', 2, 3, 'k1'), read('', 1, 4, 5, 'k1'), read('', 2, 0, 1, 'k2')]);
    expect(bad.verdict).toBe('illegal');
    expect(bad.keys.find((k) => k.verdict === 'illegal')!.key).toBe('k1');
  });

  test('a long concurrent history completes (memoization), and an exhausted budget says unknown', () => {
    const ops: CasOp[] = [];
    let version = 1;
    let value = '';
    ops.push(read('', 1, 0, 1));
    for (let i = 0; i < 150; i++) {
      const t = 10 + i * 10;
      // Three clients race from the same version: one wins, two fail; readers overlap the race.
      ops.push(cas(version, `${value} w${i}a`, 'mismatch', t, t + 9), cas(version, `${value} w${i}b`, 'ok', t + 1, t + 8), cas(version, `${value} w${i}c`, 'unknown', t + 2, 0));
      ops.push(read(value, version, t + 1, t + 3));
      value = `${value} w${i}b`;
      version += 2;
      ops.push(read(value, version, t + 8.5, t + 9.5));
    }
    expect(check(ops)).toBe('ok');
    expect(checkKey(casRegister(), ops, 50).verdict).toBe('unknown');
  });

  test('a violation is narrowed to the first prefix that fails', () => {
    const ops = [read('', 5, 0, 1), cas(5, 'a', 'ok', 2, 3), read('a', 9, 4, 5), read('', 5, 6, 7), cas(9, 'b', 'ok', 8, 9)];
    const why = narrowViolation(casRegister(), ops, casPending);
    expect(why.at).toBe(7);
    expect(why.ops.at(-1)!.call).toBe(6);
  });

  test('a model that throws on a malformed output is not hidden', () => {
    const m: Model<number, string, string> = { init: () => 0, hash: String, step: () => { throw new Error('bad output'); } };
    expect(() => checkKey(m, [{ client: 0, key: 'k', input: 'i', output: 'o', call: 0, ret: 1 }])).toThrow('bad output');
  });
});
