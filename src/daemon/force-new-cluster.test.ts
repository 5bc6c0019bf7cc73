import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../lib/errors.ts';
import type { Node } from '../types/index.ts';
import { currentCluster, initCluster } from './cluster.ts';
import { checkForceNewCluster, forgetLostManagers } from './force-new-cluster.ts';
import { openClusterState } from './state.ts';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

test('forgetLostManagers removes every other manager (as node rm --force) and keeps the workers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-force-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const first = await openClusterState({ dataDir: dir, nodeId: 'self' });
  await initCluster(first.store, 'self', { Hostname: 'h', Platform: { OS: 'linux', Architecture: 'amd64' } } as Node['Description']);
  const self = first.store.get('nodes', 'self')!;
  const node = (ID: string, Role: 'manager' | 'worker'): Node => ({ ...self, ID, Spec: { ...self.Spec, Role }, ...(Role === 'manager' ? {} : { ManagerStatus: undefined }) });
  await first.store.update((tx) => {
    for (const n of [node('m2', 'manager'), node('m3', 'manager'), node('w1', 'worker')]) tx.create('nodes', n);
  });
  first.close();

  const forced = await openClusterState({ dataDir: dir, nodeId: 'self', forceNewCluster: true });
  cleanup.push(() => forced.close());
  expect(forced.raft.status.role).toBe('leader');
  // The log was a lone voter's already: nothing to take out of raft, but the node objects go.
  expect(await forgetLostManagers(forced.store, 'self', forced.raft.forcedOut)).toEqual(['m2', 'm3']);
  expect(forced.store.list('nodes').map((n) => n.ID).sort()).toEqual(['self', 'w1']);
  expect(currentCluster(forced.store)!.RemovedNodes).toEqual(['m2', 'm3']);
  expect(await forgetLostManagers(forced.store, 'self', [])).toEqual([]);
});

test('checkForceNewCluster names why the flag does not apply and what to do', () => {
  expect(() => checkForceNewCluster('worker', true, '/d')).toThrow(InvalidArgumentError);
  expect(() => checkForceNewCluster('worker', true, '/d')).toThrow(/this host is a worker and holds no raft log; run it on a surviving manager's --data-dir/);
  expect(() => checkForceNewCluster(null, false, '/d')).toThrow('--force-new-cluster: /d holds no cluster state to recover');
  expect(() => checkForceNewCluster('manager', true, '/d')).not.toThrow();
});
