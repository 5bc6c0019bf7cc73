import { expect, test } from 'bun:test';
import { memoryStore } from '../../store/index.ts';
import type { Cluster, UpgradeRecord } from '../../types/index.ts';
import { UPGRADE_DOWN_GRACE_MS, upgradeGraceMs } from './upgrade-grace.ts';

function storeWith(upgrade?: Partial<UpgradeRecord>) {
  const store = memoryStore();
  const node = (NodeID: string, State: UpgradeRecord['Nodes'][number]['State']) => ({ NodeID, Hostname: '', Role: 'worker' as const, From: '0.1.0', State, UpdatedAt: '' });
  const rec: UpgradeRecord = { ID: 'u', Kind: 'upgrade', Version: '0.2.0', Sha256: '', Size: 0, Phase: 'running', Parallelism: 1, Nodes: [node('a', 'restarting'), node('b', 'ready')], StartedAt: '', UpdatedAt: '', ...upgrade };
  const cluster = { ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: {}, JoinTokens: { Worker: '', Manager: '' }, ...(upgrade ? { Upgrade: rec } : {}) } as unknown as Cluster;
  return store.update((tx) => tx.create('clusters', cluster)).then(() => store);
}

test('a node the running upgrade is restarting gets the long grace; others, and any node after the upgrade, do not', async () => {
  const s = await storeWith({});
  expect(upgradeGraceMs(s, 'a')).toBe(UPGRADE_DOWN_GRACE_MS);
  expect(upgradeGraceMs(s, 'b')).toBeNull();
  expect(upgradeGraceMs(s, 'zzz')).toBeNull();
  expect(upgradeGraceMs(await storeWith({ Phase: 'paused' }), 'a')).toBeNull();
  expect(upgradeGraceMs(await storeWith(), 'a')).toBeNull();
});
