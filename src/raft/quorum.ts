import type { NodeId } from './types.ts';

// Majority arithmetic over one voter set (shoal changes membership one node at a time, so there is
// never a joint configuration to consider).

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The largest index that a majority of `voters` has acknowledged. `acked` gives each voter's
 * acknowledged index (0 when unknown). An empty voter set commits nothing.
 */
export function majorityIndex(voters: readonly NodeId[], acked: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const indexes = voters.map(acked).sort((a, b) => b - a);
  return indexes[quorumSize(voters.length) - 1];
}

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** Won once a majority granted, lost once a majority can no longer grant, else pending. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = quorumSize(voters.length);
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** Whether the voters for which `active` holds form a majority. */
export function quorumActive(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  return voters.filter(active).length >= quorumSize(voters.length);
}
