/**
 * `POST /swarm/backup` on this manager: the store as it stands at one applied raft entry.
 *
 * Any manager serves it, leader or follower, from its own replica: a read barrier first (ReadIndex,
 * which a follower asks of the leader), so the snapshot holds every write acknowledged before the
 * request; then the snapshot is taken synchronously, so it is the state after exactly one entry
 * of the log (the replica's applied index, at or past the read index), whose index and term the
 * header records. Nothing is copied through the leader: a follower's replica is the same state.
 */
import { type BackupHeader, encodeBackup } from '../backup/format.ts';
import { UnavailableError } from '../lib/errors.ts';
import { VERSION } from '../lib/version.ts';
import { TABLES } from '../store/index.ts';
import { currentCluster } from './cluster.ts';
import type { DaemonContext } from './context.ts';

export async function takeBackup(ctx: DaemonContext, signal?: AbortSignal): Promise<{ header: BackupHeader; bytes: Uint8Array }> {
  const raft = ctx.state.raft;
  if (ctx.role !== 'manager' || !raft?.status.running) throw new UnavailableError('this node holds no copy of the cluster state: take the backup on a manager');
  await ctx.store.sync(signal);
  // From here to encodeBackup: no await, so no entry is applied in between.
  const { store } = ctx;
  const index = store.index;
  const snapshot = store.snapshot();
  const objects = Object.fromEntries(TABLES.map((t) => [t, store.size(t)]));
  const term = raft.termAt(index);
  const cluster = currentCluster(store);
  if (!cluster) throw new UnavailableError('this node is not in a cluster');
  if (term === null) throw new UnavailableError(`the term of raft entry ${index} is not in this replica's log any more; try again`);
  return encodeBackup({
    header: { ClusterID: cluster.ID, RaftIndex: index, RaftTerm: term, NodeID: ctx.nodeId, ShoalVersion: VERSION, CreatedAt: new Date().toISOString(), Objects: objects },
    snapshot,
    unlockKey: cluster.UnlockKey || undefined,
  });
}
