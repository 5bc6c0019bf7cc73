import { describe, expect, test } from 'bun:test';
import { InvalidUnlockKeyError, isSealed, newUnlockKey, openWithUnlockKey, parseUnlockKey, sealWithUnlockKey } from './unlock-key.ts';

describe('unlock keys', () => {
  test('Docker\'s shape, 32 random bytes, different every time', () => {
    const a = newUnlockKey();
    expect(a).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    expect(parseUnlockKey(a).length).toBe(32);
    expect(parseUnlockKey(` ${a}\n`).equals(parseUnlockKey(a))).toBe(true);
    expect(newUnlockKey()).not.toBe(a);
  });

  test('a string of another shape is refused as an invalid key, saying why', () => {
    for (const bad of ['', 'hunter2', 'SWMKEY-1-', 'SWMKEY-1-abc', 'SWMKEY-2-' + 'A'.repeat(43), 'SWMKEY-1-' + '*'.repeat(43)]) {
      expect(() => parseUnlockKey(bad)).toThrow(InvalidUnlockKeyError);
    }
  });

  test('sealed bytes open with the same key and purpose only', () => {
    const key = newUnlockKey();
    const sealed = sealWithUnlockKey(key, 'dek', Buffer.from('the data key'));
    expect(isSealed(sealed)).toBe(true);
    expect(sealed.includes(Buffer.from('the data key'))).toBe(false);
    expect(openWithUnlockKey(key, 'dek', sealed).toString()).toBe('the data key');
    expect(() => openWithUnlockKey(newUnlockKey(), 'dek', sealed)).toThrow('swarm could not be unlocked: invalid key provided');
    expect(() => openWithUnlockKey(key, 'node key', sealed)).toThrow(InvalidUnlockKeyError);
    const altered = Buffer.from(sealed);
    altered[altered.length - 20]! ^= 1;
    expect(() => openWithUnlockKey(key, 'dek', altered)).toThrow(InvalidUnlockKeyError);
    expect(isSealed(Buffer.from('plain protobuf'))).toBe(false);
  });
});
