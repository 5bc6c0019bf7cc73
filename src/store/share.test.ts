import { describe, expect, test } from 'bun:test';
import { share, shareMembers } from './share.ts';

describe('share', () => {
  test('equal parts become the base\'s own, unequal ones stay; the result is still equal to next', () => {
    const base = { a: { x: [1, 2], y: 'same' }, b: { z: 1 }, s: 'text' };
    const next = { a: { x: [1, 2], y: 'same' }, b: { z: 2 }, s: 'text', extra: [3] };
    const copy = structuredClone(next);
    const out = share(next, base);
    expect(out).toEqual(copy);
    expect(out).not.toBe(base);
    expect(out.a).toBe(base.a);
    expect(out.b).not.toBe(base.b);
  });

  test('the base itself when equal throughout; not when either has a member the other lacks', () => {
    expect(share({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual({ a: [1, { b: 2 }] });
    const base = { a: [1, { b: 2 }] };
    expect(share({ a: [1, { b: 2 }] }, base)).toBe(base);
    const fewer = { a: 1 };
    expect(share({ a: 1 }, { a: 1, b: 2 })).not.toBe(fewer);
    const more = { a: 1, b: 2 };
    expect(share(more, { a: 1 })).toBe(more);
    expect(share([1, 2], [1, 2, 3])).toEqual([1, 2]);
    expect(share({ 0: 1 }, [1])).toEqual({ 0: 1 });
  });

  test('shareMembers never returns the base object', () => {
    const base = { ID: 'a', Spec: { Image: 'x' } };
    const next = shareMembers({ ID: 'a', Spec: { Image: 'x' } }, base);
    expect(next).not.toBe(base);
    expect(next.Spec).toBe(base.Spec);
    expect(shareMembers({ ID: 'b' }, undefined)).toEqual({ ID: 'b' });
  });
});
