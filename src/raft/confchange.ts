import type { RaftState } from './state.ts';
import { bcastAppend } from './replicate.ts';
import type { ConfChange, ConfState, NodeId } from './types.ts';

// Membership changes, one node at a time (so any two consecutive configurations share a majority).
// The leader refuses a second change until the first is applied (Raft.propose, pendingConfIndex);
// every node applies a change when the host has applied its committed entry.

/** Apply a committed conf change to `r`; returns the new configuration. */
export function applyConfChange(r: RaftState, cc: ConfChange): ConfState {
  const conf = r.trk.confState();
  const without = (ids: NodeId[]) => ids.filter((id) => id !== cc.node);
  conf.voters = without(conf.voters);
  conf.learners = without(conf.learners);
  if (cc.type === 'addVoter') conf.voters.push(cc.node);
  else if (cc.type === 'addLearner') conf.learners.push(cc.node);
  setConf(r, conf);
  return r.trk.confState();
}

function setConf(r: RaftState, conf: ConfState): void {
  const before = new Set(r.trk.progress.keys());
  r.trk.setConf(conf, r.log.lastIndex() + 1);
  // A new member counts as active for check-quorum until it has had an election timeout to answer.
  for (const [id, pr] of r.trk.progress) if (!before.has(id)) pr.recentActive = true;
  for (const id of before) if (!r.trk.isMember(id)) r.snapshotSends.delete(id);
  if (r.role !== 'leader') return;
  if (!r.trk.isVoter(r.id)) {
    // Removed (or demoted): tell followers the commit index, then step down for a voter to lead.
    bcastAppend(r);
    r.becomeFollower(r.term, null);
    return;
  }
  if (r.leadTransferee !== null && !r.trk.isVoter(r.leadTransferee)) r.leadTransferee = null;
  if (r.maybeCommit()) bcastAppend(r);
}
