/**
 * The cluster state of this host: the store on a Raft log in <data-dir>/raft/. A cluster's first
 * manager bootstraps the log as its only voter and leads at once; a manager that joined starts with
 * no configuration and learns it from the leader. The network is attached later (`transport`), so
 * the API can be up before libp2p is.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ShoalError } from '../lib/errors.ts';
import { raftCommitLatency, raftLeaderChanges } from '../lib/metrics.ts';
import { type HostObserver, RaftHost, realTimers } from '../raft-host/host.ts';
import { LateTransport } from '../raft-host/late-transport.ts';
import type { ForceRecord } from '../raft-host/recovery.ts';
import { MAX_BATCH_BYTES, MemoryStore } from '../store/index.ts';
import type { Proposer } from '../store/proposer.ts';
import { currentCluster } from './cluster.ts';
import { followRaftTiming } from './raft-timing.ts';

export const DEFAULT_SNAPSHOT_INTERVAL = 10_000;

export interface ClusterState {
  store: MemoryStore;
  raft: RaftHost;
  /** Where the daemon attaches the libp2p raft transport once it is up. */
  transport: LateTransport;
  /** Stops the raft host; proposals still in flight reject with HostStoppedError. */
  close(): void;
}

export interface StateOptions {
  dataDir: string;
  nodeId: string;
  /** Overrides the cluster's Spec.Raft.SnapshotInterval (unit tests). */
  snapshotInterval?: number;
  /** The raft host stopped itself (a disk failure): the state is gone from under the daemon. */
  onFatal?: (err: Error) => void;
  /**
   * This manager joined an existing cluster: its log starts without a configuration (the leader
   * sends it) instead of bootstrapping itself as a lone voter, and opening does not wait to lead.
   */
  joined?: boolean;
  /** After a lost quorum: the log's configuration is rewritten to this node alone (see RaftHostOptions). */
  forceNewCluster?: boolean;
  /** The last entry of an earlier force (force-new-cluster.ts): a stale flag is not applied again. */
  forcedBefore?: ForceRecord;
  observer?: HostObserver;
  log?: (msg: string) => void;
  /** This manager's raft data key: the WAL and snapshots are sealed with it (keys-at-rest.ts). */
  dataKey?: Uint8Array;
}

/**
 * Opens the log, rebuilds the store from its snapshot and committed entries, and resolves once
 * this node leads and the store has applied everything committed before the call.
 */
export async function openClusterState(opts: StateOptions): Promise<ClusterState> {
  const old = join(opts.dataDir, 'state.db');
  const dir = join(opts.dataDir, 'raft');
  if (existsSync(old) && !existsSync(dir)) {
    throw new ShoalError(
      `${old} holds cluster state in the format of an earlier pre-release (a SQLite log), which this version does not read; ` +
        `remove it (its cluster, services and tasks are lost) or start with another --data-dir`,
    );
  }
  const store = new MemoryStore();
  const transport = new LateTransport();
  const raft = new RaftHost({
    id: opts.nodeId,
    dir,
    transport,
    stateMachine: store,
    bootstrap: opts.joined ? undefined : { voters: [opts.nodeId], learners: [] },
    forwardProposals: true,
    forceNewCluster: opts.forceNewCluster,
    forcedBefore: opts.forcedBefore,
    dataKey: opts.dataKey,
    observer: countLeaderChanges(opts.observer, opts.log),
    // Drain on a microtask, not a later turn: one voter waits for nobody, so a write is durable and
    // applied before the event loop moves on (the stages' passes and a clean stop count on that);
    // proposals made in the same stretch of code still share one fsync.
    timers: { every: realTimers.every, defer: queueMicrotask, now: realTimers.now },
    snapshotInterval: () => opts.snapshotInterval ?? snapshotSetting(store),
    onFatal: opts.onFatal,
    // Entries of one append message: as many bytes as one batch may hold (the frame around it has
    // room to spare), not etcd's 1 MiB. Ten services of 1,000 tasks written together (1.8 MB) then
    // reach a follower in one message and commit together, so the scheduler places them in one pass
    // and each node gets one frame; at 1 MiB they committed in two halves, placed a pass apart.
    raft: { maxSizePerMsg: MAX_BATCH_BYTES },
  });
  raft.start();
  store.proposer = timedProposer(raft);
  const unfollow = followRaftTiming(store, raft, opts.log);
  try {
    // A lone voter leads from start(); the barrier waits for the committed tail to be applied.
    // With other voters the log waits for the network (attached later) to elect a leader.
    if (raft.status.role === 'leader') await store.sync();
  } catch (e) {
    unfollow();
    raft.stop();
    throw e;
  }
  return { store, raft, transport, close: () => { unfollow(); raft.stop(); } };
}

/** Commit latency as a caller sees it: propose until this replica applied the entry. */
function timedProposer(raft: RaftHost): Proposer {
  return {
    async propose(entry, signal, local) {
      const end = raftCommitLatency.startTimer();
      const result = await raft.propose(entry, signal, local);
      end();
      return result;
    },
    readBarrier: (signal) => raft.readBarrier(signal),
  };
}

function countLeaderChanges(observer: HostObserver | undefined, log?: (msg: string) => void): HostObserver {
  let known: string | null = null;
  return {
    ...observer,
    roleChanged(id, role, leader) {
      log?.(`raft: ${role}${leader ? `, leader ${leader}` : ', no leader known'}`);
      if (leader !== known) raftLeaderChanges.inc();
      known = leader;
      observer?.roleChanged?.(id, role, leader);
    },
  };
}

/** The cluster's own setting (as Docker's --snapshot-interval), when it holds a sane one. */
function snapshotSetting(store: MemoryStore): number {
  const v = currentCluster(store)?.Spec.Raft?.SnapshotInterval;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : DEFAULT_SNAPSHOT_INTERVAL;
}
