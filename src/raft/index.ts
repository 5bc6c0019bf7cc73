/**
 * shoal's pure Raft consensus core (modelled on etcd-io/raft). No timers, sockets, files or random
 * sources inside: time is `tick()`, randomness is `cfg.rand`, I/O is the host's job.
 *
 * API notes (all additions to the first published shape, backward compatible):
 *   - RaftConfig.maxEntriesPerMsg, maxCommittedSizePerReady; Message.offset (snapshotResp).
 *   - status() also returns vote, lastIndex, conf and transferee; each peer's progress has `learner`.
 *   - readIndex() and transferLeader() throw ProposalDroppedError when there is no leader / we are
 *     not the leader (nothing would ever answer otherwise). Proposals are never forwarded by
 *     RaftNode.propose (it throws on followers); a host may forward them itself.
 *   - MemoryStorage.withConf(conf) bootstraps a new cluster; setConfState(conf) records the
 *     configuration returned by applyConfChange.
 *   - proposeMany(data[]) proposes a batch (one append per follower carries it).
 *   - RaftConfig.asyncStorageWrites with persisted(index, term) / persistedIndex(): see below.
 *
 * Contract for the host, one loop iteration:
 *   1. Feed inputs: tick() every tick interval, step(m) for each received message, propose(data),
 *      proposeConfChange(cc), readIndex(ctx), transferLeader(to).
 *   2. If hasReady(): const rd = node.ready(); then, in this order:
 *      a. persist durably: rd.snapshot (storage.applySnapshot) if present, then rd.entries
 *         (storage.append; an entry at an existing index replaces that suffix), then rd.hardState
 *         (storage.setHardState) if present. fsync when rd.mustSync.
 *      b. send rd.messages (only after a. — the simple safe order; messages may be dropped, reordered
 *         or duplicated by the network, the core copes).
 *      c. apply rd.committed in order to the state machine. For an entry of type 'conf', decode it
 *         with decodeConfChange(entry.data), call node.applyConfChange(cc), and persist the returned
 *         ConfState (MemoryStorage.setConfState) so a restart starts from it. If rd.snapshot was
 *         present, restore the state machine from it first.
 *      d. hand rd.readStates to waiting readers: a read with that context may be served once the
 *         state machine has applied up to readState.index.
 *      e. node.advance(rd).
 *   3. Compact when you like: storage.createSnapshot(appliedIndex, conf, data) then storage.compact(i).
 *   4. Optional hints: reportUnreachable(id) when the transport cannot reach a peer (stops
 *      optimistic streaming to it). Snapshots travel in chunks that the follower acknowledges
 *      itself (a lost chunk is resent after an election timeout), so reportSnapshot(id, ok) is only
 *      needed to abort a transfer early (ok=false restarts it on the next heartbeat response).
 * Ready and advance come in pairs: call advance(rd) before asking for the next ready().
 *
 * With cfg.asyncStorageWrites the host may hand a Ready's entries to storage (MemoryStorage.append)
 * and call advance(rd) before they are fsynced, and fsync later, several Readies at once. Then:
 * call persisted(index, term) with the last entry each fsync covered; the leader counts itself in
 * the commit quorum only up to that. A leader may send its Ready's messages at once unless the
 * Ready changed term or vote; every other node sends a Ready's messages only after the fsync
 * covering it. Committed entries may be applied at once (committed means a quorum has them on
 * disk, this node's own fsync aside). A Ready with a snapshot is persisted in the plain order.
 * A restarted node is constructed from the same storage (hard state, conf state, entries) with
 * cfg.applied = the index the state machine has already applied (0 to replay everything).
 * A node joining an existing cluster starts with an empty log and the configuration it is being
 * added to (the leader's current ConfState, before its own addLearner/addVoter); it must not be
 * started as a voter of a configuration of its own. It catches up by entries or by snapshot.
 * Membership changes one node at a time: add a learner, wait until status().progress[id].match
 * is close to the leader's lastIndex, then propose addVoter for it.
 */
export type {
  NodeId,
  EntryType,
  Entry,
  HardState,
  ConfState,
  ConfChange,
  SnapshotMeta,
  Snapshot,
  SnapshotChunk,
  MessageType,
  Message,
  ReadState,
  Role,
  SoftState,
  Ready,
  Storage,
  RaftConfig,
  ProgressState,
  PeerStatus,
  Status,
} from './types.ts';
export { RaftNode } from './rawnode.ts';
export { ProposalDroppedError, CompactedError, UnavailableError, SnapshotOutOfDateError } from './errors.ts';
export { MemoryStorage } from './storage.ts';
export { encodeConfChange, decodeConfChange } from './confchange-codec.ts';
