/** The upgrade record in the Cluster object: read it, change it (retrying a lost optimistic race). */
import { ConflictError, UnavailableError } from '../../lib/errors.ts';
import type { MemoryStore } from '../../store/index.ts';
import type { UpgradeNode, UpgradeRecord } from '../../types/index.ts';
import { currentCluster } from '../cluster.ts';

export function currentUpgrade(store: MemoryStore): UpgradeRecord | undefined {
  return currentCluster(store)?.Upgrade;
}

/** Replace the record with `fn(current)`; `fn` returning null leaves it unchanged. */
export async function changeUpgrade(store: MemoryStore, fn: (cur: UpgradeRecord | undefined) => UpgradeRecord | null, signal?: AbortSignal): Promise<UpgradeRecord | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await store.update((tx) => {
        const id = currentCluster(store)?.ID;
        const cur = id ? tx.get('clusters', id) : undefined;
        if (!cur) throw new UnavailableError('this node is not in a cluster');
        const next = fn(cur.Upgrade);
        if (!next) return cur.Upgrade;
        tx.update('clusters', { ...cur, Upgrade: { ...next, UpdatedAt: new Date().toISOString() } });
        return next;
      }, signal);
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 4) throw err;
      await store.sync(signal);
    }
  }
}

/** Set one node's state in record `id` (a record replaced meanwhile is left alone). */
export function setNodeState(store: MemoryStore, id: string, nodeId: string, state: UpgradeNode['State'], message?: string): Promise<UpgradeRecord | undefined> {
  return changeUpgrade(store, (cur) => {
    if (!cur || cur.ID !== id) return null;
    const at = new Date().toISOString();
    return { ...cur, Nodes: cur.Nodes.map((n) => (n.NodeID === nodeId ? { ...n, State: state, Message: message, UpdatedAt: at } : n)) };
  });
}

export function setPhase(store: MemoryStore, id: string, phase: UpgradeRecord['Phase'], message?: string): Promise<UpgradeRecord | undefined> {
  return changeUpgrade(store, (cur) => (!cur || cur.ID !== id ? null : { ...cur, Phase: phase, Message: message }));
}
