import type { RaftLog } from './log.ts';
import type { ProgressTracker } from './progress.ts';
import type { ReadOnly } from './readonly.ts';
import type { Entry, Message, NodeId, ReadState, Role, Snapshot } from './types.ts';

// The shape of one node's Raft state as the role modules (election, replicate, step-*, confchange)
// see it. It lives apart from the Raft class so those modules depend on this, not on raft.ts, while
// raft.ts depends on them: no import cycle among the core's files.

/** A role's message handler, swapped whole by the become* methods. */
export type StepFn = (r: RaftState, m: Message) => void;

/** A snapshot being streamed to one follower, chunk by chunk. */
export interface SnapshotSend {
  snap: Snapshot;
  /** Bytes the follower acknowledged; the next chunk starts here. */
  acked: number;
  /** Heartbeat rounds without an acknowledgement; the chunk is resent after an election timeout. */
  idleTicks: number;
}

/** A snapshot being received from the leader. */
export interface SnapshotReceive {
  meta: Snapshot['meta'];
  parts: Uint8Array[];
  size: number;
}

export interface RaftState {
  readonly id: NodeId;
  term: number;
  vote: NodeId | null;
  lead: NodeId | null;
  role: Role;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  readonly readOnly: ReadOnly;
  msgs: Message[];
  readStates: ReadState[];

  electionTicks: number;
  heartbeatTicks: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxSizePerMsg: number;
  readonly maxEntriesPerMsg: number;
  readonly maxUncommittedBytes: number;
  readonly snapshotChunkBytes: number;

  electionElapsed: number;
  heartbeatElapsed: number;
  randomizedElectionTimeout: number;
  leadTransferee: NodeId | null;
  /** Index of the newest conf change entry; another is refused until it is applied. */
  pendingConfIndex: number;
  uncommittedSize: number;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  pendingReadIndexMessages: Message[];
  readonly snapshotSends: Map<NodeId, SnapshotSend>;
  snapshotRecv: SnapshotReceive | undefined;

  /** Queue a message; `term` defaults to ours except for the vote family, which set their own. */
  send(m: Omit<Message, 'from' | 'term'> & { term?: number }): void;
  becomeFollower(term: number, lead: NodeId | null): void;
  becomePreCandidate(): void;
  becomeCandidate(): void;
  becomeLeader(): void;
  promotable(): boolean;
  /** Append entries to the leader's log (assigning term and index); false when over the uncommitted budget. */
  appendEntries(es: Entry[]): boolean;
  /** Advance the commit index to what a quorum holds; true when it moved. */
  maybeCommit(): boolean;
  propose(es: Entry[]): void;
  /** Restore from a snapshot sent by the leader; false when our log already covers it. */
  restore(s: Snapshot): boolean;
  committedEntryInCurrentTerm(): boolean;
}
