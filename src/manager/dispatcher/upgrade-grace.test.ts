import { expect, test } from 'bun:test';
import { memoryStore } from '../../store/index.ts';
import type { Cluster, UpgradeRecord } from '../../types/index.ts';
import { UPGRADE_DOWN_GRACE_MS, UPGRADE_SETTLE_MS, upgradeGraceMs } from './upgrade-grace.ts';

const T = Date.parse('2026-01-01T00:00:00Z');

async function storeWith(upgrade?: Partial<UpgradeRecord>) {
  const store = memoryStore();
  const node = (NodeID: string, State: UpgradeRecord['Nodes'][number]['State']) => ({ NodeID, Hostname: '', Role: 'worker' as const, From: '0.1.0', State, UpdatedAt: '' });
  const rec: UpgradeRecord = { ID: 'u', Kind: 'upgrade', Version: '0.2.0', Sha256: '', Size: 0, Phase: 'running', Parallelism: 1, Nodes: [node('a', 'restarting'), node('b', 'ready')], StartedAt: '', UpdatedAt: new Date(T).toISOString(), ...upgrade };
  const cluster = { ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: {}, JoinTokens: { Worker: '', Manager: '' }, ...(upgrade ? { Upgrade: rec } : {}) } as unknown as Cluster;
  await store.update((tx) => tx.create('clusters', cluster));
  return store;
}

test('every node of a running upgrade gets the long grace, and for a while after it is done; not a paused one, nor other nodes', async () => {
  const running = await storeWith({});
  expect(upgradeGraceMs(running, 'a', T)).toBe(UPGRADE_DOWN_GRACE_MS);
  expect(upgradeGraceMs(running, 'b', T)).toBe(UPGRADE_DOWN_GRACE_MS);
  expect(upgradeGraceMs(running, 'zzz', T)).toBeNull();
  const done = await storeWith({ Phase: 'done' });
  expect(upgradeGraceMs(done, 'a', T + 1_000)).toBe(UPGRADE_DOWN_GRACE_MS);
  expect(upgradeGraceMs(done, 'a', T + UPGRADE_SETTLE_MS + 1)).toBeNull();
  expect(upgradeGraceMs(await storeWith({ Phase: 'paused' }), 'a', T)).toBeNull();
  expect(upgradeGraceMs(await storeWith(), 'a', T)).toBeNull();
});
