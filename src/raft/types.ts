// Value types of the pure Raft core. Every input and output of RaftNode is one of these plain values,
// so the host can serialise them (msgpack) and the simulator can replay them.

export type NodeId = string;

export type EntryType = 'normal' | 'conf';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be on disk before any message of the same Ready leaves the node. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface ConfChange {
  type: 'addVoter' | 'addLearner' | 'removeNode';
  node: NodeId;
  context?: Uint8Array;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type MessageType =
  | 'preVote'
  | 'preVoteResp'
  | 'vote'
  | 'voteResp'
  | 'append'
  | 'appendResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snapshot'
  | 'snapshotResp'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp'
  | 'propose'; /* follower→leader forwarding, optional */

/** One chunk of a snapshot on the wire; the follower exposes the snapshot only once `done` arrives. */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  offset: number;
  chunk: Uint8Array;
  done: boolean;
}

/**
 * A message between peers. Field use by type:
 * - preVote/vote: index/logTerm = candidate's last log position; context = 'transfer' marker bytes
 *   when the campaign comes from a leadership transfer (ignores the leader lease).
 * - append: index/logTerm = position preceding `entries`; commit = leader commit.
 * - appendResp: index = last matching index (accept) or the rejected index (reject); on reject
 *   rejectHint/logTerm give the follower's hint (index, term) for fast back-tracking.
 * - heartbeat: commit = min(leader commit, follower match); context = ReadIndex round context.
 * - snapshot: `snapshot` carries one chunk.
 * - snapshotResp: index = snapshot index; offset = bytes received so far; reject when out of order.
 * - readIndex/readIndexResp: context = the read's context; resp index = read index.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm?: number;
  index?: number;
  entries?: Entry[];
  commit?: number;
  reject?: boolean;
  rejectHint?: number;
  snapshot?: SnapshotChunk;
  context?: Uint8Array;
  /** snapshotResp: number of snapshot bytes the follower holds (the next offset it expects). */
  offset?: number;
}

export interface ReadState {
  index: number;
  context: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

export interface Ready {
  /** Present only when leader or role changed since the previous Ready. */
  softState?: SoftState;
  /** Present only when term, vote or commit changed since the previous Ready. */
  hardState?: HardState;
  /** Entries to append to stable storage (may overwrite a suffix of what is there). */
  entries: Entry[];
  /** Entries committed and ready to apply, in order. */
  committed: Entry[];
  /** Messages to send after `hardState`, `entries` and `snapshot` are durable. */
  messages: Message[];
  /** A snapshot received from the leader, to persist (storage.applySnapshot) and restore. */
  snapshot?: Snapshot;
  readStates: ReadState[];
  /** True when hardState/entries/snapshot must be fsynced before sending messages. */
  mustSync: boolean;
}

/**
 * The read-only view of the durable log that the core reads from. The host writes to it
 * (MemoryStorage offers append/applySnapshot/compact/createSnapshot/setHardState).
 * term()/entries() throw CompactedError below firstIndex()-1 and UnavailableError above lastIndex().
 */
export interface Storage {
  initialState(): { hardState: HardState; conf: ConfState };
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Ticks a follower waits for the leader before campaigning; randomized into [e, 2e). Default 10. */
  electionTicks: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTicks: number;
  /** Source of randomness in [0, 1) for election timeouts; the core has no other. */
  rand: () => number;
  preVote?: boolean /* default true */;
  checkQuorum?: boolean /* default true */;
  /** Max bytes of entry data in one append message (at least one entry is always sent). */
  maxSizePerMsg?: number;
  /** Max entries in one append message. */
  maxEntriesPerMsg?: number;
  /** Max append messages in flight to one follower in replicate state. */
  maxInflightMsgs?: number;
  /** Max bytes of uncommitted entry data the leader accepts before dropping proposals. */
  maxUncommittedBytes?: number;
  /** Bytes of snapshot data per `snapshot` message. */
  snapshotChunkBytes?: number;
  /** Index already applied by the state machine (on restart). */
  applied?: number;
  /** Max bytes of committed entries handed out in one Ready. */
  maxCommittedSizePerReady?: number;
  /**
   * The host persists a Ready's entries after it asked for the next one (fsync in the background)
   * and reports each fsync with RaftNode.persisted(index, term). The leader then counts itself in
   * the commit quorum only up to what it reported durable, not up to what it appended, so it may
   * send its appends before its own fsync finished. Default false: the leader counts its entries
   * once appended, which is right when every Ready is persisted before its messages leave.
   */
  asyncStorageWrites?: boolean;
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface PeerStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  learner: boolean;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  role: Role;
  commit: number;
  applied: number;
  lastIndex: number;
  conf: ConfState;
  /** Leadership transfer target, while one is in progress. */
  transferee: NodeId | null;
  /** Per-peer replication progress; filled only on the leader. */
  progress: Record<NodeId, PeerStatus>;
}
