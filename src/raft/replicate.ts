import { CompactedError } from './errors.ts';
import type { RaftState } from './state.ts';
import type { Entry, NodeId } from './types.ts';
import { sizeOf } from './util.ts';

// How the leader feeds followers: appends (batched, pipelined within the inflight bound), heartbeats,
// and snapshots in chunks when the entries a follower needs were compacted away.

/** Send the follower what it needs next; false when nothing was sent (paused, or nothing new). */
export function sendAppend(r: RaftState, to: NodeId, sendIfEmpty = true): boolean {
  const pr = r.trk.progress.get(to);
  if (!pr || to === r.id || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm === undefined) return sendSnapshot(r, to);
  let entries: Entry[];
  try {
    entries = r.log.entries(pr.next, r.maxSizePerMsg);
  } catch (e) {
    if (e instanceof CompactedError) return sendSnapshot(r, to);
    throw e;
  }
  if (entries.length > r.maxEntriesPerMsg) entries = entries.slice(0, r.maxEntriesPerMsg);
  if (entries.length === 0 && !sendIfEmpty) return false;
  r.send({ type: 'append', to, index: prevIndex, logTerm: prevTerm, entries, commit: r.log.committed });
  pr.sentEntries(entries.length, sizeOf(entries));
  return true;
}

/** Send appends to every follower (and learner) that can take them. */
export function bcastAppend(r: RaftState): void {
  for (const id of r.trk.progress.keys()) if (id !== r.id) sendAppend(r, id);
}

export function sendHeartbeat(r: RaftState, to: NodeId, context?: Uint8Array): void {
  const pr = r.trk.progress.get(to);
  if (!pr) return;
  // A follower may not hold entries up to our commit index yet: never tell it more than its match.
  const commit = Math.min(pr.match, r.log.committed);
  r.send({ type: 'heartbeat', to, commit, ...(context ? { context } : {}) });
}

export function bcastHeartbeat(r: RaftState, context?: Uint8Array): void {
  for (const id of r.trk.progress.keys()) if (id !== r.id) sendHeartbeat(r, id, context);
}

export function sendTimeoutNow(r: RaftState, to: NodeId): void {
  r.send({ type: 'timeoutNow', to });
}

/** Switch the follower to snapshot state and start streaming the current snapshot. */
function sendSnapshot(r: RaftState, to: NodeId): boolean {
  const pr = r.trk.progress.get(to)!;
  const snap = r.log.snapshot();
  if (snap.meta.index === 0) throw new Error(`raft: follower ${to} needs a snapshot but storage has none`);
  pr.becomeSnapshot(snap.meta.index);
  r.snapshotSends.set(to, { snap, acked: 0, idleTicks: 0 });
  sendSnapshotChunk(r, to);
  return true;
}

export function sendSnapshotChunk(r: RaftState, to: NodeId): void {
  const s = r.snapshotSends.get(to);
  if (!s) return;
  const total = s.snap.data.length;
  const offset = Math.min(s.acked, total);
  const end = Math.min(offset + r.snapshotChunkBytes, total);
  r.send({
    type: 'snapshot',
    to,
    snapshot: { meta: s.snap.meta, offset, chunk: s.snap.data.slice(offset, end), done: end === total },
  });
}

/** Called on heartbeat: resend the current chunk of a snapshot that saw no acknowledgement for an election timeout. */
export function resendStalledSnapshots(r: RaftState): void {
  for (const [id, s] of r.snapshotSends) {
    const pr = r.trk.progress.get(id);
    if (!pr || pr.state !== 'snapshot') {
      r.snapshotSends.delete(id);
      continue;
    }
    s.idleTicks += r.heartbeatTicks;
    if (s.idleTicks >= r.electionTicks) {
      s.idleTicks = 0;
      sendSnapshotChunk(r, id);
    }
  }
}
