import { campaign, hup, poll } from './election.ts';
import type { RaftState } from './state.ts';
import type { Message, Snapshot } from './types.ts';

/** Follower behaviour for messages that passed the term checks. */
export function stepFollower(r: RaftState, m: Message): void {
  switch (m.type) {
    case 'propose':
      if (r.lead !== null && m.entries?.length) r.send({ type: 'propose', to: r.lead, term: 0, entries: m.entries });
      return;
    case 'append':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppend(r, m);
      return;
    case 'heartbeat':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case 'snapshot':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case 'timeoutNow':
      // The leader is handing over: campaign at once, without pre-vote and ignoring leases.
      hup(r, 'transfer');
      return;
    case 'readIndex':
      // Only the leader serves reads; a follower forwards its own (see Raft.readIndex), never relays.
      return;
    case 'readIndexResp':
      r.readStates.push({ index: m.index ?? 0, context: m.context ?? new Uint8Array(0) });
      return;
    default:
      return;
  }
}

/** Pre-candidate and candidate behaviour. */
export function stepCandidate(r: RaftState, m: Message): void {
  switch (m.type) {
    case 'append':
      r.becomeFollower(m.term, m.from);
      handleAppend(r, m);
      return;
    case 'heartbeat':
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return;
    case 'snapshot':
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return;
    case 'preVoteResp':
    case 'voteResp': {
      const mine = r.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
      if (m.type !== mine) return;
      const result = poll(r, m.from, !m.reject);
      if (result === 'won') {
        if (r.role === 'preCandidate') campaign(r, 'election');
        else r.becomeLeader();
      } else if (result === 'lost') {
        r.becomeFollower(r.term, null);
      }
      return;
    }
    default:
      // Proposals, reads and transfers have no leader to go to during an election: dropped.
      return;
  }
}

export function handleAppend(r: RaftState, m: Message): void {
  const index = m.index ?? 0;
  const entries = m.entries ?? [];
  // Entries must follow `index` without gaps; anything else is a malformed message: drop it.
  for (let i = 0; i < entries.length; i++) if (entries[i].index !== index + 1 + i) return;
  if (index < r.log.committed) {
    r.send({ type: 'appendResp', to: m.from, index: r.log.committed });
    return;
  }
  const lastNew = r.log.maybeAppend(index, m.logTerm ?? 0, m.commit ?? 0, entries);
  if (lastNew !== undefined) {
    r.send({ type: 'appendResp', to: m.from, index: lastNew });
    return;
  }
  // Reject with a hint: the last index at or before `index` whose term is at most the leader's
  // term there. The leader can then skip every entry of a conflicting term in one round trip.
  const hint = r.log.findConflictByTerm(Math.min(index, r.log.lastIndex()), m.logTerm ?? 0);
  r.send({ type: 'appendResp', to: m.from, index, reject: true, rejectHint: hint.index, logTerm: hint.term });
}

export function handleHeartbeat(r: RaftState, m: Message): void {
  const commit = m.commit ?? 0;
  if (commit <= r.log.lastIndex()) r.log.commitTo(commit);
  r.send({ type: 'heartbeatResp', to: m.from, ...(m.context ? { context: m.context } : {}) });
}

/**
 * Assemble a snapshot from its chunks. Only the complete snapshot is restored (and then exposed in
 * Ready); an out-of-order chunk is answered with the offset we expect.
 */
export function handleSnapshot(r: RaftState, m: Message): void {
  const c = m.snapshot;
  if (!c) return;
  const meta = c.meta;
  if (meta.index <= r.log.committed) {
    r.snapshotRecv = undefined;
    r.send({ type: 'appendResp', to: m.from, index: r.log.committed });
    return;
  }
  let rv = r.snapshotRecv;
  const same = rv !== undefined && rv.meta.index === meta.index && rv.meta.term === meta.term;
  if (c.offset === 0 && !(same && rv!.size === 0)) {
    rv = { meta, parts: [], size: 0 };
  } else if (!same || c.offset !== rv!.size) {
    r.send({ type: 'snapshotResp', to: m.from, index: meta.index, reject: true, offset: same ? rv!.size : 0 });
    return;
  }
  rv = rv!;
  rv.parts.push(c.chunk);
  rv.size += c.chunk.length;
  r.snapshotRecv = rv;
  if (!c.done) {
    r.send({ type: 'snapshotResp', to: m.from, index: meta.index, offset: rv.size });
    return;
  }
  r.snapshotRecv = undefined;
  const data = new Uint8Array(rv.size);
  let at = 0;
  for (const p of rv.parts) {
    data.set(p, at);
    at += p.length;
  }
  const snap: Snapshot = { meta, data };
  if (r.restore(snap)) r.send({ type: 'appendResp', to: m.from, index: r.log.lastIndex() });
  else r.send({ type: 'appendResp', to: m.from, index: r.log.committed });
}
