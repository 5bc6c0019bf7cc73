// Start-up: rebuild the core's MemoryStorage from the WAL, or bootstrap a founding member, or (after
// a lost quorum) rewrite the configuration to this node alone.
import { type ConfChange, type ConfState, type Entry, type NodeId, type Snapshot, MemoryStorage, decodeConfChange, encodeConfChange } from '../raft/index.ts';
import type { Disk } from './disk.ts';
import { Wal, type WalOptions, type WalState } from './wal.ts';

export interface Recovered {
  wal: Wal;
  storage: MemoryStorage;
  conf: ConfState;
  snapshot: Snapshot | null;
  /** With forceNewCluster: the members the forced configuration removed (empty when it was alone already). */
  forcedOut?: NodeId[];
  /** With forceNewCluster: what was done (see ForceOutcome). */
  force?: ForceOutcome;
}

/** A force as the daemon records it in its data dir: the last of its conf entries. */
export interface ForceRecord { index: number; term: number }

/**
 * What a start with forceNewCluster did:
 *  - `forced`: conf changes leaving this node alone were appended; `at` is the last of them.
 *  - `alone`: the configuration held only this node already; nothing was written.
 *  - `forced-before`: the recorded earlier force is in this log and the membership changed since
 *    (the cluster grew again): the flag is stale (left in a unit file, say); nothing was written.
 * `previousInLog`: the recorded force given is an entry of this log.
 */
export interface ForceOutcome {
  kind: 'forced' | 'alone' | 'forced-before';
  out: NodeId[];
  at?: ForceRecord;
  previousInLog: boolean;
}

/** --force-new-cluster on a data dir whose raft log holds no cluster: there is nothing to recover. */
export class NothingToRecoverError extends Error {
  override readonly name = 'NothingToRecoverError';
  constructor(dir: string) {
    super(`${dir} holds no raft log of a cluster: there is nothing to recover; start without --force-new-cluster (with --init to make a cluster, or --join)`);
  }
}

export function recover(disk: Disk, dir: string, bootstrap: ConfState | undefined, walOpts: WalOptions, forceNewCluster?: NodeId, previousForce?: ForceRecord): Recovered {
  const { wal, state } = Wal.open(disk, dir, walOpts);
  let conf = state.conf;
  const fresh = !conf && !state.snapshot && state.entries.length === 0 && state.hardState.term === 0;
  let forcedOut: NodeId[] | undefined;
  let force: ForceOutcome | undefined;
  if (forceNewCluster) {
    if (fresh) {
      wal.close();
      throw new NothingToRecoverError(dir);
    }
    force = forceAlone(wal, state, forceNewCluster, previousForce);
    forcedOut = force.out;
  } else if (fresh && bootstrap) {
    // Like etcd: the initial configuration is written as committed conf entries at term 1, the same
    // on every founding member, so a node that joins later learns the founders from the log.
    conf = bootstrap;
    const cc: ConfChange[] = [
      ...conf.voters.map((node): ConfChange => ({ type: 'addVoter', node })),
      ...conf.learners.map((node): ConfChange => ({ type: 'addLearner', node })),
    ];
    state.entries = cc.map((c, i) => ({ term: 1, index: i + 1, type: 'conf', data: encodeConfChange(c) }));
    state.hardState = { term: 1, vote: null, commit: cc.length };
    wal.saveConfState(conf);
    wal.save(state.hardState, state.entries);
  }
  conf ??= { voters: [], learners: [] };
  const storage = MemoryStorage.withConf(conf);
  if (state.snapshot) storage.applySnapshot(state.snapshot);
  storage.setConfState(conf);
  storage.append(state.entries);
  storage.setHardState(state.hardState);
  return { wal, storage, conf, snapshot: state.snapshot, ...(forcedOut ? { forcedOut } : {}), ...(force ? { force } : {}) };
}

/**
 * etcd's and swarmkit's --force-new-cluster, in the log: conf changes that leave `self` the only
 * voter are appended after everything the log holds and written as committed, so the node applies
 * them at start (before it may campaign) and every later member learns them from the log. The
 * pure core is not involved: this is what a leader of a one-node configuration would have written.
 *
 * Unlike etcd, the uncommitted tail is kept and committed too: this host may hold entries the old
 * majority committed before it heard the commit index (it lags the leader by a heartbeat), and an
 * acknowledged write must not be lost; an entry that was never committed was answered "may still
 * take effect" at most, so taking it is allowed (one answered "lost, overwritten" was replaced by
 * committed entries this host lacks: it is behind the old cluster then, whatever it does).
 * Returns the members removed.
 */
function forceAlone(wal: Wal, state: WalState, self: NodeId, previous?: ForceRecord): ForceOutcome {
  const snapIndex = state.snapshot?.meta.index ?? 0;
  // The configuration at the end of the log: the snapshot's, then every conf entry after it.
  const conf: ConfState = state.snapshot
    ? { voters: [...state.snapshot.meta.conf.voters], learners: [...state.snapshot.meta.conf.learners] }
    : { voters: [], learners: [] };
  for (const e of state.entries) {
    if (e.index <= snapIndex || e.type !== 'conf') continue;
    const cc = decodeConfChange(e.data);
    conf.voters = conf.voters.filter((id) => id !== cc.node);
    conf.learners = conf.learners.filter((id) => id !== cc.node);
    if (cc.type === 'addVoter') conf.voters.push(cc.node);
    else if (cc.type === 'addLearner') conf.learners.push(cc.node);
  }
  const previousInLog = !!previous && inLog(state, previous);
  const changes: ConfChange[] = [];
  if (!conf.voters.includes(self)) changes.push({ type: 'addVoter', node: self }); // first: never zero voters
  const out = [...conf.voters, ...conf.learners].filter((id) => id !== self);
  for (const node of out) changes.push({ type: 'removeNode', node });
  if (!changes.length) return { kind: 'alone', out: [], previousInLog };
  // A force leaves this node alone: a configuration with others after it means the cluster grew again.
  if (previousInLog) return { kind: 'forced-before', out: [], previousInLog };
  const last = state.entries.length ? state.entries[state.entries.length - 1]! : null;
  const lastIndex = Math.max(last?.index ?? 0, snapIndex);
  const term = Math.max(state.hardState.term, last?.term ?? 0, state.snapshot?.meta.term ?? 0);
  const forced: Entry[] = changes.map((c, i) => ({ term, index: lastIndex + 1 + i, type: 'conf', data: encodeConfChange(c) }));
  state.entries.push(...forced);
  state.hardState = { term, vote: term === state.hardState.term ? state.hardState.vote : null, commit: lastIndex + forced.length };
  wal.save(state.hardState, forced);
  const lastForced = forced[forced.length - 1]!;
  return { kind: 'forced', out, at: { index: lastForced.index, term: lastForced.term }, previousInLog };
}

/** Is `rec` an entry of this log (a conf entry with that index and term, or compacted into the snapshot)? */
function inLog(state: WalState, rec: ForceRecord): boolean {
  const snap = state.snapshot?.meta;
  if (snap && rec.index <= snap.index) return rec.term <= snap.term;
  const e = state.entries.find((x) => x.index === rec.index);
  return !!e && e.term === rec.term && e.type === 'conf';
}
