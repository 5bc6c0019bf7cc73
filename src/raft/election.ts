import type { RaftState } from './state.ts';
import type { Message, NodeId } from './types.ts';

// Elections: pre-vote (a campaign that changes no durable state until a majority would vote for
// us), the real vote, and leadership-transfer campaigns that ignore the leader lease.

/** The `context` of a vote request that comes from a leadership transfer: it ignores the leader lease. */
export const TRANSFER_CONTEXT = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

export type CampaignKind = 'preElection' | 'election' | 'transfer';

/** Start an election if allowed (a voter, not already leader, no unapplied conf change). */
export function hup(r: RaftState, kind: 'election' | 'transfer'): void {
  if (r.role === 'leader' || !r.promotable() || hasUnappliedConfChanges(r)) return;
  if (kind === 'transfer') campaign(r, 'transfer');
  else campaign(r, r.preVote ? 'preElection' : 'election');
}

function hasUnappliedConfChanges(r: RaftState): boolean {
  if (r.log.applied >= r.log.committed) return false;
  try {
    const lo = Math.max(r.log.applied + 1, r.log.firstIndex());
    return r.log.slice(lo, r.log.committed + 1).some((e) => e.type === 'conf');
  } catch {
    return false;
  }
}

export function campaign(r: RaftState, kind: CampaignKind): void {
  let term: number;
  let type: 'preVote' | 'vote';
  if (kind === 'preElection') {
    r.becomePreCandidate();
    type = 'preVote';
    term = r.term + 1; // the term we would campaign at; our own term does not move yet
  } else {
    r.becomeCandidate();
    type = 'vote';
    term = r.term;
  }
  if (poll(r, r.id, true) === 'won') {
    if (kind === 'preElection') campaign(r, 'election');
    else r.becomeLeader();
    return;
  }
  for (const id of r.trk.voters) {
    if (id === r.id) continue;
    r.send({
      type,
      to: id,
      term,
      index: r.log.lastIndex(),
      logTerm: r.log.lastTerm(),
      ...(kind === 'transfer' ? { context: TRANSFER_CONTEXT } : {}),
    });
  }
}

export function poll(r: RaftState, id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
  r.trk.recordVote(id, granted);
  return r.trk.tallyVotes().result;
}

/** Answer a vote or pre-vote request that passed the term checks (§5.2, §5.4.1). */
export function handleVoteRequest(r: RaftState, m: Message): void {
  const canVote =
    r.vote === m.from ||
    (r.vote === null && r.lead === null) ||
    (m.type === 'preVote' && m.term > r.term);
  const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
  if (canVote && r.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
    // The response carries the request's term so a pre-candidate can count it.
    r.send({ type: respType, to: m.from, term: m.term, reject: false });
    if (m.type === 'vote') {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.send({ type: respType, to: m.from, reject: true });
  }
}
