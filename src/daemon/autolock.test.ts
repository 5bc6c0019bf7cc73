import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUnlockKey } from '../lib/unlock-key.ts';
import { loadOrCreateNodeKey } from '../net/identity.ts';
import { memoryStore } from '../store/index.ts';
import type { Cluster, Node } from '../types/index.ts';
import { followUnlockKey } from './autolock.ts';
import { defaultClusterSpec } from './cluster.ts';
import { AtRestKeys, DEK_FILE } from './keys-at-rest.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const sealed = (dir: string) => 'Sealed' in JSON.parse(readFileSync(join(dir, DEK_FILE), 'utf8'));

describe('a manager follows the cluster\'s unlock key', () => {
  test('sealed when set, re-sealed at a rotation, clear when off or when this node is demoted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-follow-'));
    dirs.push(dir);
    const keys = AtRestKeys.read(dir);
    keys.dataKey();
    await loadOrCreateNodeKey(dir, keys.nodeKeyStore());
    const store = memoryStore();
    const logs: string[] = [];
    const stop = followUnlockKey(store, 'n1', keys, (m) => logs.push(m));
    expect(sealed(dir)).toBe(false); // no cluster yet: nothing to follow

    const first = newUnlockKey();
    const cluster: Cluster = { ID: 'c1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: defaultClusterSpec(), JoinTokens: { Worker: 'w', Manager: 'm' }, UnlockKey: first };
    const node = { ID: 'n1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Role: 'manager', Availability: 'active', Labels: {} }, Description: {}, Status: { State: 'ready', Addr: '127.0.0.1' } } as unknown as Node;
    await store.update((tx) => {
      tx.create('clusters', cluster);
      tx.create('nodes', node);
    });
    expect(sealed(dir)).toBe(true);
    expect(keys.wrappedUnder).toBe(first);

    const second = newUnlockKey();
    await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', 'c1')!, UnlockKey: second }));
    expect(keys.wrappedUnder).toBe(second);
    const reread = AtRestKeys.read(dir);
    expect(() => reread.unlock(first)).toThrow('invalid key provided');
    reread.unlock(second);

    await store.update((tx) => tx.update('nodes', { ...tx.get('nodes', 'n1')!, Spec: { ...node.Spec, Role: 'worker' } }));
    expect(sealed(dir)).toBe(false);
    await loadOrCreateNodeKey(dir); // node.key in the clear again: a worker is never locked

    await store.update((tx) => tx.update('nodes', { ...tx.get('nodes', 'n1')!, Spec: { ...node.Spec, Role: 'manager' } }));
    expect(sealed(dir)).toBe(true);
    await store.update((tx) => {
      const { UnlockKey: _k, ...rest } = tx.get('clusters', 'c1')!;
      tx.update('clusters', rest);
    });
    expect(sealed(dir)).toBe(false);
    expect(logs.filter((l) => l.includes('sealed under')).length).toBe(3);
    stop();
  });
});
