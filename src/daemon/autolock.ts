/**
 * Each manager keeps its own keys at rest (keys-at-rest.ts) sealed under the cluster's unlock key:
 * it follows `Cluster.UnlockKey` through the store and re-wraps when the key is set, rotated or
 * removed (autolock off). A manager the store says is a worker now (demoted) writes them in the
 * clear: workers are never locked, as in Swarm.
 */
import { errorMessage } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import { currentCluster } from './cluster.ts';
import type { AtRestKeys } from './keys-at-rest.ts';
import type { Log } from './options.ts';

/** Starts following the cluster's unlock key; returns the function that stops it. */
export function followUnlockKey(store: MemoryStore, nodeId: string, keys: AtRestKeys, log: Log): () => void {
  let failed: string | null = null;
  const check = () => {
    const cluster = currentCluster(store);
    // No cluster object yet (a manager that just joined and is catching up): nothing to follow.
    if (!cluster) return;
    const want = store.get('nodes', nodeId)?.Spec.Role === 'worker' ? null : cluster.UnlockKey ?? null;
    if (want === keys.wrappedUnder) return;
    try {
      keys.wrap(want);
      failed = null;
      log(want ? 'autolock: this manager\'s raft data key and node key are sealed under the cluster\'s unlock key' : 'autolock off: this host\'s raft data key and node key are kept in the clear (mode 0600)');
    } catch (err) {
      // Logged once per cause: the next commit tries again.
      const msg = errorMessage(err);
      if (msg !== failed) log(`autolock: could not re-wrap this manager's keys: ${msg}`);
      failed = msg;
    }
  };
  const unwatch = store.watch((ev) => {
    if (ev.kind === 'commit') check();
  });
  check();
  return unwatch;
}
