import { quorumSize } from './quorum.ts';
import { MAX_PENDING_READS } from './readonly.ts';
import type { RaftState } from './state.ts';
import { bcastAppend, sendAppend, sendSnapshotChunk, sendTimeoutNow } from './replicate.ts';
import type { Message } from './types.ts';

/** Leader behaviour for messages that passed the term checks. */
export function stepLeader(r: RaftState, m: Message): void {
  switch (m.type) {
    case 'propose':
      // Forwarded by a follower. Dropped silently when we cannot take it (the sender retries).
      if (!m.entries?.length || r.leadTransferee !== null) return;
      try {
        r.propose(m.entries.map((e) => ({ ...e })));
      } catch {
        // ProposalDroppedError: nothing to do; the proposer times out and retries.
      }
      return;
    case 'readIndex':
      handleReadIndex(r, m);
      return;
    case 'appendResp':
      handleAppendResp(r, m);
      return;
    case 'heartbeatResp':
      handleHeartbeatResp(r, m);
      return;
    case 'snapshotResp':
      handleSnapshotResp(r, m);
      return;
    default:
      // Vote responses from a finished election, or our own term's messages echoed: nothing to do.
      return;
  }
}

function handleAppendResp(r: RaftState, m: Message): void {
  const pr = r.trk.progress.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  const index = m.index ?? 0;
  if (m.reject) {
    // Fast back-tracking: skip straight to the last index where the follower's log can match ours.
    let next = m.rejectHint ?? 0;
    if ((m.logTerm ?? 0) > 0) next = r.log.findConflictByTerm(next, m.logTerm!).index;
    if (pr.maybeDecrTo(index, next)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  // An acknowledgement beyond our log cannot come from a correct follower of this term.
  if (index > r.log.lastIndex()) return;
  const wasPaused = pr.isPaused();
  if (!pr.maybeUpdate(index)) return;
  if (pr.state === 'probe') {
    pr.becomeReplicate();
  } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
    r.snapshotSends.delete(m.from);
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(index);
  }
  if (r.maybeCommit()) {
    releasePendingReadIndex(r);
    bcastAppend(r);
  } else if (wasPaused) {
    sendAppend(r, m.from);
  }
  // Keep the pipe full: send as many new batches as the inflight window allows.
  while (sendAppend(r, m.from, false)) {
    /* one batch per iteration */
  }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) sendTimeoutNow(r, m.from);
}

function handleHeartbeatResp(r: RaftState, m: Message): void {
  const pr = r.trk.progress.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  pr.probeSent = false;
  // Acknowledgements may have been lost: let one more append through a full window per heartbeat.
  if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.log.lastIndex()) sendAppend(r, m.from);
  if (!m.context || m.context.length === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (!acks) return;
  let voterAcks = 0;
  for (const id of acks) if (r.trk.isVoter(id)) voterAcks++;
  if (voterAcks < quorumSize(r.trk.voters.length)) return;
  for (const { req, index } of r.readOnly.advance(m.context)) respondToReadIndex(r, req, index);
}

function handleSnapshotResp(r: RaftState, m: Message): void {
  const pr = r.trk.progress.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  const s = r.snapshotSends.get(m.from);
  if (pr.state !== 'snapshot' || !s || m.index !== s.snap.meta.index) return;
  const offset = Math.min(m.offset ?? 0, s.snap.data.length);
  if (!m.reject && offset <= s.acked) return; // a duplicate acknowledgement
  s.acked = offset;
  s.idleTicks = 0;
  sendSnapshotChunk(r, m.from);
}

/**
 * Serve a ReadIndex: remember the commit index, then confirm we are still leader with a heartbeat
 * round; the read is answered once a quorum acknowledges (or at once with a single voter).
 */
export function handleReadIndex(r: RaftState, m: Message): void {
  const ctx = m.context ?? new Uint8Array(0);
  if (r.trk.voters.length === 1 && r.trk.isVoter(r.id)) {
    respondToReadIndex(r, m, r.log.committed);
    return;
  }
  // Until an entry of our term is committed we do not know the true commit index (§8).
  if (!r.committedEntryInCurrentTerm()) {
    if (r.pendingReadIndexMessages.length < MAX_PENDING_READS) r.pendingReadIndexMessages.push(m);
    return;
  }
  if (!r.readOnly.addRequest(r.log.committed, m)) return; // too many reads in flight: the reader retries
  r.readOnly.recvAck(r.id, ctx);
  for (const id of r.trk.progress.keys()) {
    if (id === r.id) continue;
    const pr = r.trk.progress.get(id)!;
    r.send({ type: 'heartbeat', to: id, commit: Math.min(pr.match, r.log.committed), context: ctx });
  }
}

function respondToReadIndex(r: RaftState, req: Message, index: number): void {
  const context = req.context ?? new Uint8Array(0);
  if (req.from === r.id) r.readStates.push({ index, context });
  else r.send({ type: 'readIndexResp', to: req.from, index, context });
}

function releasePendingReadIndex(r: RaftState): void {
  if (r.pendingReadIndexMessages.length === 0 || !r.committedEntryInCurrentTerm()) return;
  const pending = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of pending) handleReadIndex(r, m);
}
