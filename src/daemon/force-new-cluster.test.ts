import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../lib/errors.ts';
import type { Node } from '../types/index.ts';
import { currentCluster, initCluster } from './cluster.ts';
import { checkForceNewCluster, forgetLostManagers, loadForceRecord, saveForceRecord, settleForce } from './force-new-cluster.ts';
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

/** A one-voter log whose configuration also has learner `m2` (a manager node that never caught up), and a worker. */
async function clusterWithLearner(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-force-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const st = await openClusterState({ dataDir: dir, nodeId: 'self' });
  await initCluster(st.store, 'self', { Hostname: 'h', Platform: { OS: 'linux', Architecture: 'amd64' } } as Node['Description']);
  await addNodes(st.store, ['m2', 'manager'], ['w1', 'worker']);
  await st.raft.addLearner('m2');
  st.close();
  return dir;
}

async function addNodes(store: Awaited<ReturnType<typeof openClusterState>>['store'], ...nodes: [string, 'manager' | 'worker'][]): Promise<void> {
  const self = store.get('nodes', 'self')!;
  await store.update((tx) => {
    for (const [ID, Role] of nodes) tx.create('nodes', { ...self, ID, Spec: { ...self.Spec, Role }, ...(Role === 'manager' ? {} : { ManagerStatus: undefined }) });
  });
}

/** A start with --force-new-cluster as the daemon makes it: the record read first, the outcome settled. */
async function startForced(dir: string): Promise<{ message: string; state: Awaited<ReturnType<typeof openClusterState>> }> {
  const previous = loadForceRecord(dir);
  const state = await openClusterState({ dataDir: dir, nodeId: 'self', forceNewCluster: true, forcedBefore: previous ?? undefined });
  cleanup.push(() => state.close());
  return { message: await settleForce(state.store, dir, 'self', state.raft.forced!, previous), state };
}

const ids = (s: { store: { list(t: 'nodes'): Node[] } }) => s.store.list('nodes').map((n) => n.ID).sort();

test('a force is recorded; the flag again after the cluster grew forces nothing and keeps the new managers', async () => {
  const dir = await clusterWithLearner();
  const first = await startForced(dir);
  expect(first.message).toContain('--force-new-cluster: this node is now the only manager');
  expect(first.state.raft.status.conf).toEqual({ voters: ['self'], learners: [] });
  expect(ids(first.state)).toEqual(['self', 'w1']);
  const rec = loadForceRecord(dir)!;
  expect(rec).toMatchObject({ index: first.state.raft.forced!.at!.index, term: first.state.raft.forced!.at!.term, removed: ['m2'], done: true });
  // It grows again: a new manager m4 (a learner here: it needs no answer from m4 to be added).
  await addNodes(first.state.store, ['m4', 'manager']);
  await first.state.raft.addLearner('m4');
  first.state.close();

  const again = await startForced(dir);
  expect(again.state.raft.forced!.kind).toBe('forced-before');
  expect(again.message).toContain('--force-new-cluster: nothing to force: it was applied already and the cluster has grown again since');
  expect(again.message).toContain(`raft index ${rec.index}`);
  expect(again.state.raft.status.conf.learners).toEqual(['m4']);
  expect(ids(again.state)).toEqual(['m4', 'self', 'w1']);
  expect(loadForceRecord(dir)).toEqual(rec);
});

test('a force interrupted before the store followed is completed by the next start with the flag; then nothing to force', async () => {
  const dir = await clusterWithLearner();
  // The raft host forced the configuration, and the daemon recorded it, then stopped before removing m2.
  const st = await openClusterState({ dataDir: dir, nodeId: 'self', forceNewCluster: true });
  const at = st.raft.forced!.at!;
  saveForceRecord(dir, { ...at, at: new Date().toISOString(), removed: ['m2'], done: false });
  expect(ids(st)).toEqual(['m2', 'self', 'w1']);
  st.close();

  const resumed = await startForced(dir);
  expect(resumed.state.raft.forced).toMatchObject({ kind: 'alone', previousInLog: true });
  expect(resumed.message).toContain('completed the force of');
  expect(ids(resumed.state)).toEqual(['self', 'w1']);
  expect(loadForceRecord(dir)!.done).toBe(true);
  // A manager joining meanwhile (in the store, not yet in raft) is kept by a later start with the flag.
  await addNodes(resumed.state.store, ['m5', 'manager']);
  resumed.state.close();
  const idle = await startForced(dir);
  expect(idle.message).toContain('--force-new-cluster: nothing to force: this manager is already the only voter of its cluster. It was applied on');
  expect(ids(idle.state)).toEqual(['m5', 'self', 'w1']);
  expect(idle.state.raft.status.role).toBe('leader');
});

test('an interrupted force is not completed once the cluster has grown again: the new manager stays', async () => {
  const dir = await clusterWithLearner();
  const st = await openClusterState({ dataDir: dir, nodeId: 'self', forceNewCluster: true });
  saveForceRecord(dir, { ...st.raft.forced!.at!, at: new Date().toISOString(), removed: ['m2'], done: false });
  await addNodes(st.store, ['m4', 'manager']);
  await st.raft.addLearner('m4');
  st.close();
  const next = await startForced(dir);
  expect(next.state.raft.forced!.kind).toBe('forced-before');
  expect(next.message).toContain('nothing to force');
  expect(ids(next.state)).toContain('m4');
  expect(next.state.raft.status.conf.learners).toEqual(['m4']);
});
