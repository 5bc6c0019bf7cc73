import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUnlockKey } from '../lib/unlock-key.ts';
import { loadOrCreateNodeKey, NODE_KEY_FILE } from '../net/identity.ts';
import { AtRestKeys, DEK_FILE } from './keys-at-rest.ts';

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'shoal-keys-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const dekJson = (dir: string) => JSON.parse(readFileSync(join(dir, DEK_FILE), 'utf8'));

describe('keys at rest', () => {
  test('without autolock: a DEK made once, in the clear, mode 0600, the same after a restart', async () => {
    const dir = temp();
    const dek = AtRestKeys.read(dir).dataKey();
    expect(dek.length).toBe(32);
    expect(statSync(join(dir, DEK_FILE)).mode & 0o777).toBe(0o600);
    expect(AtRestKeys.read(dir).locked).toBe(false);
    expect(AtRestKeys.read(dir).dataKey().equals(dek)).toBe(true);
  });

  test('wrapped: both files sealed; locked after a restart until the right key; then the same DEK and node key', async () => {
    const dir = temp();
    const keys = AtRestKeys.read(dir);
    const dek = keys.dataKey();
    const nodeKey = await loadOrCreateNodeKey(dir, keys.nodeKeyStore());
    const plainNodeKey = readFileSync(join(dir, NODE_KEY_FILE));
    const unlock = newUnlockKey();
    keys.wrap(unlock);
    expect(dekJson(dir).DEK).toBeUndefined();
    expect(readFileSync(join(dir, DEK_FILE), 'utf8')).not.toContain(dek.toString('base64'));
    expect(readFileSync(join(dir, NODE_KEY_FILE)).includes(plainNodeKey)).toBe(false);

    const again = AtRestKeys.read(dir);
    expect(again.locked).toBe(true);
    expect(() => again.dataKey()).toThrow(/needs to be unlocked/);
    await expect(loadOrCreateNodeKey(dir, again.nodeKeyStore())).rejects.toThrow(/sealed by autolock/);
    expect(() => again.unlock(newUnlockKey())).toThrow('invalid key provided');
    expect(again.locked).toBe(true);
    again.unlock(unlock);
    expect(again.locked).toBe(false);
    expect(again.dataKey().equals(dek)).toBe(true);
    expect((await loadOrCreateNodeKey(dir, again.nodeKeyStore())).equals(nodeKey)).toBe(true);
  });

  test('rotation re-seals under the new key; off writes them in the clear again', async () => {
    const dir = temp();
    const keys = AtRestKeys.read(dir);
    const dek = keys.dataKey();
    await loadOrCreateNodeKey(dir, keys.nodeKeyStore());
    const first = newUnlockKey();
    const second = newUnlockKey();
    keys.wrap(first);
    keys.wrap(second);
    const k = AtRestKeys.read(dir);
    expect(() => k.unlock(first)).toThrow('invalid key provided');
    k.unlock(second);
    expect(k.dataKey().equals(dek)).toBe(true);
    k.wrap(null);
    expect(dekJson(dir).DEK).toBe(dek.toString('base64'));
    expect(AtRestKeys.read(dir).locked).toBe(false);
    await loadOrCreateNodeKey(dir); // node.key in the clear: readable without any key store
  });

  test('a node key made while autolocked is written sealed', async () => {
    const dir = temp();
    const keys = AtRestKeys.read(dir);
    keys.dataKey();
    const unlock = newUnlockKey();
    keys.wrap(unlock);
    const made = await loadOrCreateNodeKey(dir, keys.nodeKeyStore());
    await expect(loadOrCreateNodeKey(dir)).rejects.toThrow(/not a readable node key/);
    const k = AtRestKeys.read(dir);
    k.unlock(unlock);
    expect((await loadOrCreateNodeKey(dir, k.nodeKeyStore())).equals(made)).toBe(true);
  });
});
