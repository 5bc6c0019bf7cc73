// What a RaftHost is made with and reports: its options, timing defaults, timers, observer hooks and
// status. Apart from host.ts so that callers that only configure or observe a host (the daemon, the
// simulator, benches) read this, and host.ts holds the loop alone.
import type { ConfState, Entry, MemoryStorage, NodeId, RaftConfig, Role } from '../raft/index.ts';
import type { Disk } from './disk.ts';
import type { StateMachine } from './proposer.ts';
import type { ForceRecord } from './recovery.ts';
import type { Transport } from './transport.ts';

/**
 * 50 ms ticks, an election after 14–27 of them (0.7–1.35 s, as 7–13 ticks of 100 ms before):
 * with 100 ms ticks two followers left by a dead leader drew the same timeout tick about one time in
 * seven, campaigned together, split the vote and needed a second round (6 of 16 leader kills in
 * bench/fleet took 2.05–2.5 s; the two slow rounds whose terms were logged had term +2); twice the
 * ticks halve that chance for the same times (after: 2 of 11 rounds).
 */
export const DEFAULT_TICK_MS = 50;
/** Election timeout in ticks (randomized in [n, 2n) by the core). */
export const DEFAULT_ELECTION_TICKS = 14;
/** Heartbeats every 2 ticks: every 100 ms, as before. */
export const DEFAULT_HEARTBEAT_TICKS = 2;

/** Bounds of Spec.Raft's ticks (50 ms each): heartbeats every 50 ms–5 s, an election after up to 60 s. */
export const MAX_HEARTBEAT_TICK = 100;
export const MAX_ELECTION_TICK = 1200;

/** Why these ticks cannot be used, or null. `field` prefixes names in the message (e.g. `Raft.`). */
export function raftTicksProblem(election: unknown, heartbeat: unknown, field = 'Raft.'): string | null {
  if (!Number.isInteger(heartbeat) || (heartbeat as number) < 1 || (heartbeat as number) > MAX_HEARTBEAT_TICK) return `${field}HeartbeatTick: expected an integer from 1 to ${MAX_HEARTBEAT_TICK} (ticks of 50 ms)`;
  if (!Number.isInteger(election) || (election as number) > MAX_ELECTION_TICK) return `${field}ElectionTick: expected an integer up to ${MAX_ELECTION_TICK} (ticks of 50 ms)`;
  // Followers must hear at least two heartbeats in an election timeout, or a loaded leader loses them.
  if ((election as number) < 2 * (heartbeat as number) + 1) return `${field}ElectionTick: must be more than twice ${field}HeartbeatTick (${heartbeat}), got ${election}`;
  return null;
}

export interface HostTimers {
  /** Calls fn every ms milliseconds until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
  /** Runs fn soon, on a later turn (batches everything that arrives meanwhile). */
  defer(fn: () => void): void;
  /** Milliseconds of a monotonic clock. Optional: without it every timer call is one tick. */
  now?(): number;
}

export const realTimers: HostTimers = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  defer(fn) {
    setImmediate(fn);
  },
  now: () => performance.now(),
};

export interface RaftHostOptions {
  id: NodeId;
  /** Directory of the WAL and snapshot files. */
  dir: string;
  disk?: Disk;
  transport: Transport;
  stateMachine: StateMachine;
  /** Voters (and learners) of a brand-new cluster; ignored once the log has a configuration. */
  bootstrap?: ConfState;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Snapshot the state machine every this many applied entries; a function is asked each time (a setting that can change). */
  snapshotInterval?: number | (() => number);
  /** Entries kept below a snapshot so slow followers catch up without one. */
  snapshotTailEntries?: number;
  segmentBytes?: number;
  /**
   * This manager's data encryption key (32 bytes): the WAL and snapshots are sealed with it
   * (wal-cipher.ts), and a log in the clear is rewritten sealed at start. Absent: written in the clear.
   */
  dataKey?: Uint8Array;
  /** Ticks a caller waits for a commit, read or transfer before OutcomeUnknownError. */
  requestTimeoutTicks?: number;
  rand?: () => number;
  timers?: HostTimers;
  /** Extra core knobs (message sizes, inflight limits, preVote, checkQuorum). */
  raft?: Partial<Omit<RaftConfig, 'id' | 'storage' | 'rand' | 'applied'>>;
  observer?: HostObserver;
  /** Called when the host stops itself after an unrecoverable error (disk failure). */
  onFatal?: (err: Error) => void;
  /**
   * Pipelined persistence (default true; used only when the disk can fsync off the event loop, so not
   * in the simulator, and only while this node is not its configuration's lone voter): group commit,
   * one fsync in flight while the next batch is written, a leader's appends sent before its own
   * fsync. false: each ready is fsynced on the loop before its messages.
   */
  pipeline?: boolean;
  /** false: one fdatasync per entry, in ready order (the group-commit ablation of bench/raft.ts). */
  groupCommit?: boolean;
  /** false: a leader's appends wait for its own fsync as every other message does (an ablation). */
  parallelLeaderAppend?: boolean;
  /** On a follower, send proposals to the leader instead of refusing them with NotLeaderError. */
  forwardProposals?: boolean;
  /**
   * After a lost quorum: before starting, append committed conf changes that leave this node the
   * only voter (recovery.ts), so it leads alone with its log intact. Refused on an empty log.
   */
  forceNewCluster?: boolean;
  /** The last entry of an earlier force, as recorded by the caller: a stale flag is not applied again (ForceOutcome). */
  forcedBefore?: ForceRecord;
}

/** Hooks for tests and the simulator; called synchronously inside the loop. */
export interface HostObserver {
  /** The entries of a ready are durable (and in `storage`). */
  persisted?(id: NodeId, entries: Entry[], storage: MemoryStorage): void;
  /** This node just became leader of `term`; `storage` holds its log. */
  becameLeader?(id: NodeId, term: number, storage: MemoryStorage): void;
  /** An entry was applied (conf entries and empty entries included). */
  applied?(id: NodeId, entry: Entry): void;
  /** The state machine was restored from a snapshot. */
  restored?(id: NodeId, index: number, term: number): void;
  /** This node's role or the leader it knows changed (the daemon starts and stops leader-only work). */
  roleChanged?(id: NodeId, role: Role, leader: NodeId | null): void;
}

export interface HostStatus {
  id: NodeId;
  running: boolean;
  role: Role;
  leader: NodeId | null;
  term: number;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  conf: ConfState;
  /** Each member's replication progress (match index, recently active); filled only on the leader. */
  progress: Record<NodeId, { match: number; recentActive: boolean; learner: boolean }>;
}
