/**
 * `shoal daemon --force-new-cluster`: this manager survived the loss of its cluster's quorum. The
 * raft host rewrites the configuration to this node alone before it starts (recovery.ts); here the
 * cluster's objects follow: the other managers are removed, as `node rm --force` would (node
 * objects deleted, ids added to Cluster.RemovedNodes).
 *
 * Removed rather than kept as down managers or demoted to workers: a node whose Spec.Role is
 * manager is added back to raft by the leader (RaftMembers), and an old manager that comes back
 * holds a raft log of the old configuration; if two of them came back they would be a majority of
 * it and elect a leader of their own. Removed, every manager of the new cluster refuses them at
 * authentication, with the reason, so an old host must leave ("shoal cluster leave --force") and
 * join again with a fresh node id. Their tasks are rescheduled on the nodes left, as for any node
 * that is gone. Workers are kept: they hold no raft state and find this manager on their own.
 */
import { MAX_REMOVED_NODES } from '../api/nodes.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import { currentCluster } from './cluster.ts';

/** --force-new-cluster where it cannot apply: name the input and what to do instead. */
export function checkForceNewCluster(role: string | null, hasLog: boolean, dataDir: string): void {
  if (role === 'worker') {
    throw new InvalidArgumentError(`--force-new-cluster: this host is a worker and holds no raft log; run it on a surviving manager's --data-dir`);
  }
  if (!hasLog) {
    throw new InvalidArgumentError(`--force-new-cluster: ${dataDir} holds no cluster state to recover; start a surviving manager's --data-dir with it (or make a new cluster with --init)`);
  }
}

/** Removes every other manager from the store; returns their ids. Call once this node leads alone. */
export async function forgetLostManagers(store: MemoryStore, selfId: string, forcedOut: string[]): Promise<string[]> {
  const cluster = currentCluster(store);
  if (!cluster) return [];
  const lost = new Set(forcedOut.filter((id) => id !== selfId));
  for (const n of store.list('nodes')) if (n.Spec.Role === 'manager' && n.ID !== selfId) lost.add(n.ID);
  if (!lost.size) return [];
  await store.update((tx) => {
    const cur = tx.get('clusters', cluster.ID);
    if (!cur) return;
    for (const id of lost) if (tx.get('nodes', id)) tx.delete('nodes', id);
    const removed = [...(cur.RemovedNodes ?? []).filter((id) => !lost.has(id)), ...lost].slice(-MAX_REMOVED_NODES);
    tx.update('clusters', { ...cur, RemovedNodes: removed });
  });
  return [...lost];
}
