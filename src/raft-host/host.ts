// The one I/O loop around the pure raft core: tick timer, persist, send, apply, advance. Implements
// Proposer for the store. See src/raft/index.ts for the core's contract. On a disk that can fsync off
// the event loop the persist step is pipelined (group-sync.ts; docs/raft-storage.md, "Group commit"):
// a ready's records are written at once and fsynced with whatever else is written meanwhile, a
// leader's appends leave before its own fsync, and what needs the records durable waits for it.
//
// It stays one class: the requests (proposals, reads, conf changes, transfers) are settled by the
// ready that commits, applies or answers them, so their waiters and the loop share one state; the
// options, defaults and status it is made with are in host-options.ts.
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type MemoryStorage,
  type NodeId,
  type Ready,
  type Role,
  RaftNode,
  decodeConfChange,
} from '../raft/index.ts';
import { sizeOf } from '../raft/util.ts';
import { type Disk, NodeDisk } from './disk.ts';
import { unwrap, wrap } from './envelope.ts';
import { DEFAULT_ELECTION_TICKS, DEFAULT_HEARTBEAT_TICKS, DEFAULT_TICK_MS, type HostStatus, type HostTimers, type RaftHostOptions, realTimers } from './host-options.ts';
import { HostStoppedError, NotLeaderError, OutcomeUnknownError, ProposalLostError, type Proposer, UnreadableEntryError } from './proposer.ts';
import { type Callback, Waiters } from './requests.ts';
import { type ForceOutcome, recover } from './recovery.ts';
import { GroupSync } from './group-sync.ts';
import type { Wal } from './wal.ts';
import { aesGcmCipher } from './wal-cipher.ts';

// Callers configure a host through this module as before.
export {
  DEFAULT_ELECTION_TICKS, DEFAULT_HEARTBEAT_TICKS, DEFAULT_TICK_MS, type HostObserver, type HostStatus, type HostTimers, type RaftHostOptions, realTimers,
} from './host-options.ts';

/** Bounds of one forwarded `propose` message, well within the wire's 4 MiB frame. */
const FORWARD_BATCH_ENTRIES = 64;
const FORWARD_BATCH_BYTES = 1024 * 1024;
/**
 * Committed bytes to apply in one ready above which a follower makes its new entries durable on the
 * loop first, so that its acknowledgement leaves before the apply (readyPipelined).
 */
const SYNC_BEFORE_APPLY_BYTES = 64 * 1024;

export class RaftHost implements Proposer {
  readonly id: NodeId;
  private readonly opts: RaftHostOptions;
  private readonly disk: Disk;
  private readonly timers: HostTimers;
  private readonly rand: () => number;
  private electionTicks: number;
  private heartbeatTicks: number;
  private requestTimeoutTicks: number;
  private node!: RaftNode;
  private storage!: MemoryStorage;
  private wal!: Wal;
  private running = false;
  private scheduled = false;
  private draining = false;
  private stopTimer: (() => void) | null = null;
  private unsubscribe: (() => void) | null = null;
  private ticks = 0;
  private get tickMs(): number {
    return this.opts.tickMs ?? DEFAULT_TICK_MS;
  }
  /** When the tick timer last counted, on the timers' clock (null: not yet). */
  private lastTickAt: number | null = null;
  private applied = 0;
  private conf: ConfState = { voters: [], learners: [] };
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private incHi = 0;
  private incLo = 0;
  private seq = 0;
  private readonly proposals = new Waiters();
  /** Proposals forwarded to a leader, by seq: answered as unknown at once when that leader is replaced. */
  private forwarded = new Map<number, NodeId>();
  /** What our proposals in flight encode, by seq: applied as they are, not decoded again (Proposer.propose). */
  private readonly locals = new Map<number, unknown>();
  private readonly confChanges = new Waiters();
  private readonly reads = new Waiters();
  /** Reads whose read index is known, waiting for apply to reach it. */
  private readsAtIndex: { index: number; seq: number }[] = [];
  private transfers: { target: NodeId; seq: number }[] = [];
  /** Persist step pipelined (group commit, fsync off the loop); else each ready is fsynced before going on. */
  private pipelined = false;
  private sync: GroupSync | null = null;
  /** Proposals taken since the last drain, proposed to the core together (pipelined). */
  private pendingProposals: { seq: number; data: Uint8Array }[] = [];
  /** Term and vote last written: a ready that changes them holds its messages until they are durable. */
  private savedTerm = 0;
  private savedVote: NodeId | null = null;
  /** A snapshot is being written off the loop (pipelined): no second one until it is durable. */
  private snapshotSaving = false;
  private readonly transferWaiters = new Waiters();
  /** The members a forced start (forceNewCluster) removed from the configuration. */
  forcedOut: NodeId[] = [];
  /** What a start with forceNewCluster did (null without the flag). */
  forced: ForceOutcome | null = null;

  constructor(opts: RaftHostOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.disk = opts.disk ?? new NodeDisk();
    this.timers = opts.timers ?? realTimers;
    this.rand = opts.rand ?? Math.random;
    // 7 × 100 ms: randomized to 0.7–1.4 s, so a crashed leader is replaced in well under 1.5 s
    // (bench/raft.ts; with 10 the slowest of 20 failovers measured 1.5–1.7 s).
    this.electionTicks = opts.electionTicks ?? DEFAULT_ELECTION_TICKS;
    this.heartbeatTicks = opts.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS;
    this.requestTimeoutTicks = opts.requestTimeoutTicks ?? this.electionTicks * 5;
  }

  /** The election and heartbeat timeouts in use, in ticks of tickMs. */
  get timeouts(): { electionTicks: number; heartbeatTicks: number } {
    return { electionTicks: this.electionTicks, heartbeatTicks: this.heartbeatTicks };
  }

  /**
   * Change the election and heartbeat timeouts (a cluster's Spec.Raft.ElectionTick/HeartbeatTick),
   * now if running, else from start(). A longer election timeout lets a leader stall longer
   * before followers campaign; requests wait five election timeouts unless requestTimeoutTicks was given.
   */
  setTimeouts(electionTicks: number, heartbeatTicks: number): void {
    if (!Number.isInteger(heartbeatTicks) || heartbeatTicks < 1) throw new Error(`raft host: heartbeat ticks must be a positive integer (got ${heartbeatTicks})`);
    if (!Number.isInteger(electionTicks) || electionTicks <= heartbeatTicks) throw new Error(`raft host: election ticks (${electionTicks}) must be an integer above the heartbeat ticks (${heartbeatTicks})`);
    if (electionTicks === this.electionTicks && heartbeatTicks === this.heartbeatTicks) return;
    this.electionTicks = electionTicks;
    this.heartbeatTicks = heartbeatTicks;
    if (this.opts.requestTimeoutTicks === undefined) this.requestTimeoutTicks = electionTicks * 5;
    if (this.running) this.node.setTimeouts(electionTicks, heartbeatTicks);
  }

  start(): void {
    if (this.running) return;
    const { opts } = this;
    const { wal, storage, conf, snapshot, forcedOut, force } = recover(this.disk, opts.dir, opts.bootstrap, { segmentBytes: opts.segmentBytes, cipher: opts.dataKey ? aesGcmCipher(opts.dataKey) : undefined }, opts.forceNewCluster ? this.id : undefined, opts.forcedBefore);
    this.forcedOut = forcedOut ?? [];
    this.forced = force ?? null;
    this.wal = wal;
    this.storage = storage;
    this.conf = conf;
    this.applied = 0;
    this.pipelined = (opts.pipeline ?? true) && (opts.groupCommit ?? true) && wal.canSyncAsync;
    this.pendingProposals = [];
    this.snapshotSaving = false;
    const hs = storage.initialState().hardState;
    this.savedTerm = hs.term;
    this.savedVote = hs.vote;
    this.sync = this.pipelined
      ? new GroupSync({
          sync: (done) =>
            wal.syncAsync((err) => {
              done(err);
              // The fsync may have completed a quorum (our own count) or released acknowledgements.
              if (!err) this.drain();
            }),
          syncNow: () => wal.sync(),
          durable: (last) => {
            if (last && this.running) this.node.persisted(last.index, last.term);
          },
          failed: (err) => {
            this.halt(err);
            this.opts.onFatal?.(err);
          },
        })
      : null;
    if (snapshot) {
      opts.stateMachine.restore(snapshot.data, snapshot.meta.index);
      this.applied = snapshot.meta.index;
    }
    opts.observer?.restored?.(this.id, this.applied, snapshot?.meta.term ?? 0);
    this.incHi = Math.floor(this.rand() * 0x1_0000_0000) >>> 0;
    this.incLo = Math.floor(this.rand() * 0x1_0000_0000) >>> 0;
    this.node = new RaftNode({
      electionTicks: this.electionTicks,
      heartbeatTicks: this.heartbeatTicks,
      ...opts.raft,
      id: this.id,
      storage,
      rand: this.rand,
      applied: this.applied,
      asyncStorageWrites: this.pipelined,
    });
    this.running = true;
    this.unsubscribe = opts.transport.onMessage((m) => {
      if (!this.running) return;
      try {
        this.node.step(m);
      } catch (err) {
        // The wire layer validates shapes; a throw here is the core's own assertion: stop, like etcd panics.
        this.halt(err as Error);
        this.opts.onFatal?.(err as Error);
        return;
      }
      this.kick();
    });
    this.lastTickAt = this.timers.now?.() ?? null;
    this.stopTimer = this.timers.every(this.tickMs, () => this.tick());
    // A lone voter need not wait an election timeout to lead, on its first start or any later one.
    // It applies what its log already committed first: a committed, unapplied conf change blocks a campaign.
    // A forced configuration is in committed entries not applied yet: applying them makes it alone.
    if (forcedOut || (this.conf.voters.length === 1 && this.conf.voters[0] === this.id)) {
      this.drain();
      if (this.running && this.conf.voters.length === 1 && this.conf.voters[0] === this.id) this.node.campaign();
    }
    this.kick();
  }

  stop(): void {
    this.halt(new HostStoppedError());
  }

  private halt(err: Error): void {
    if (!this.running) return;
    this.running = false;
    this.stopTimer?.();
    this.unsubscribe?.();
    this.sync?.stop();
    this.pendingProposals = [];
    this.wal.close();
    const e = () => err;
    this.proposals.settleAll(e);
    this.confChanges.settleAll(e);
    this.reads.settleAll(e);
    this.transferWaiters.settleAll(e);
    this.readsAtIndex = [];
    this.transfers = [];
    this.forwarded.clear();
  }

  get status(): HostStatus {
    const s = this.running ? this.node.status() : null;
    return {
      id: this.id,
      running: this.running,
      role: s?.role ?? 'follower',
      leader: s?.leader ?? null,
      term: s?.term ?? 0,
      commit: s?.commit ?? 0,
      applied: this.applied,
      lastIndex: s?.lastIndex ?? 0,
      snapshotIndex: this.storage ? this.storage.snapshot().meta.index : 0,
      conf: { voters: [...this.conf.voters], learners: [...this.conf.learners] },
      progress: s?.progress ?? {},
    };
  }

  /** fdatasyncs the pipelined persist step started (0 when not pipelined): how well group commit batches. */
  get groupFsyncs(): number {
    return this.sync?.fsyncs ?? 0;
  }

  /** The term of the entry at `index` in this replica's log (its snapshot's term at the snapshot index); null when compacted away or not there. */
  termAt(index: number): number | null {
    if (!this.storage) return null;
    try {
      return this.storage.term(index);
    } catch {
      return null;
    }
  }

  // ---- requests (callback forms are what the simulator drives; promise forms are the API) ----

  submit(entry: Uint8Array, cb: Callback, signal?: AbortSignal, local?: unknown): void {
    if (!this.running) return cb(new HostStoppedError());
    if (signal?.aborted) return cb(signal.reason instanceof Error ? signal.reason : new Error('propose aborted'));
    // No role check here: the core refuses when it is not the leader (our softState may lag a ready).
    const seq = ++this.seq;
    const data = wrap(this.incHi, this.incLo, seq, entry);
    if (local !== undefined) this.locals.set(seq, local);
    const settle: Callback = (err, v) => {
      this.forwarded.delete(seq);
      this.locals.delete(seq);
      cb(err, v);
    };
    if (this.pipelined) {
      // Proposed with the others of this turn at the next drain: one append per follower for all.
      this.pendingProposals.push({ seq, data });
      this.proposals.add(seq, 'proposal', this.ticks + this.requestTimeoutTicks, settle, signal);
      this.kick();
      return;
    }
    try {
      this.node.propose(data);
    } catch (err) {
      // A follower that knows the leader forwards the entry as raft's `propose` message over
      // the raft stream. The caller is answered when this replica applies the entry (its envelope
      // carries our incarnation), so a write is visible here once it resolves; a forward the
      // leader drops (no leader, a transfer under way) times out like any unanswered proposal.
      const st = this.node.status();
      if (!this.opts.forwardProposals || st.role === 'leader' || !st.leader || st.leader === this.id) return cb(this.refusal(err as Error));
      this.opts.transport.send([{ type: 'propose', from: this.id, to: st.leader, term: 0, entries: [{ term: 0, index: 0, type: 'normal', data }] }]);
      this.forwarded.set(seq, st.leader);
    }
    this.proposals.add(seq, 'proposal', this.ticks + this.requestTimeoutTicks, settle, signal);
    this.kick();
  }

  /** The proposals taken since the last drain, to the core as one batch (or to the leader, or refused). */
  private flushProposals(): void {
    if (this.pendingProposals.length === 0) return;
    const live = this.pendingProposals.filter((p) => this.proposals.has(p.seq)); // not aborted meanwhile
    this.pendingProposals = [];
    if (live.length === 0) return;
    try {
      this.node.proposeMany(live.map((p) => p.data));
    } catch (err) {
      const st = this.node.status();
      if (!this.opts.forwardProposals || st.role === 'leader' || !st.leader || st.leader === this.id) {
        const refusal = this.refusal(err as Error);
        for (const p of live) this.proposals.settle(p.seq, refusal);
        return;
      }
      // Forwarded as submit's unbatched path does, in messages well within the wire's 4 MiB frame.
      let part: typeof live = [];
      let bytes = 0;
      const flush = () => {
        if (!part.length) return;
        this.opts.transport.send([{ type: 'propose', from: this.id, to: st.leader!, term: 0, entries: part.map((p) => ({ term: 0, index: 0, type: 'normal' as const, data: p.data })) }]);
        for (const p of part) this.forwarded.set(p.seq, st.leader!);
        part = [];
        bytes = 0;
      };
      for (const p of live) {
        if (part.length >= FORWARD_BATCH_ENTRIES || (part.length && bytes + p.data.length > FORWARD_BATCH_BYTES)) flush();
        part.push(p);
        bytes += p.data.length;
      }
      flush();
    }
  }

  propose(entry: Uint8Array, signal?: AbortSignal, local?: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => this.submit(entry, (err, v) => (err ? reject(err) : resolve(v)), signal, local));
  }

  /** Resolves with the read index once this node has applied it: reads of local state are then linearizable. */
  readCb(cb: Callback, signal?: AbortSignal): void {
    if (!this.running) return cb(new HostStoppedError());
    if (signal?.aborted) return cb(signal.reason instanceof Error ? signal.reason : new Error('read aborted'));
    const seq = ++this.seq;
    try {
      this.node.readIndex(wrap(this.incHi, this.incLo, seq, new Uint8Array(0)));
    } catch (err) {
      return cb(this.refusal(err as Error));
    }
    this.reads.add(seq, 'linearizable read', this.ticks + this.requestTimeoutTicks, cb, signal);
    this.kick();
  }

  private reaskReads(): void {
    if (!this.running || !this.leader) return;
    const indexed = new Set(this.readsAtIndex.map((r) => r.seq));
    for (const seq of this.reads.seqs()) {
      if (indexed.has(seq)) continue;
      try {
        this.node.readIndex(wrap(this.incHi, this.incLo, seq, new Uint8Array(0)));
      } catch {
        // Refused (no leader after all): the read waits for its bound as before.
      }
    }
    this.kick();
  }

  /** The core refused a request: name the leader when that is why, else the request was not taken. */
  private refusal(err: Error): Error {
    const s = this.node.status();
    if (s.role !== 'leader') return new NotLeaderError(s.leader === this.id ? null : s.leader);
    return new ProposalLostError(err.message);
  }

  linearizableRead(signal?: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => this.readCb((err, v) => (err ? reject(err) : resolve(v as number)), signal));
  }

  /** The store's read barrier: a ReadIndex, resolved once this node has applied up to it. */
  async readBarrier(signal?: AbortSignal): Promise<void> {
    await this.linearizableRead(signal);
  }

  changeConfCb(type: ConfChange['type'], node: NodeId, cb: Callback): void {
    if (!this.running) return cb(new HostStoppedError());
    const seq = ++this.seq;
    try {
      this.node.proposeConfChange({ type, node, context: wrap(this.incHi, this.incLo, seq, new Uint8Array(0)) });
    } catch (err) {
      return cb(this.refusal(err as Error));
    }
    this.confChanges.add(seq, `${type} ${node}`, this.ticks + this.requestTimeoutTicks, cb);
    this.kick();
  }

  private changeConf(type: ConfChange['type'], node: NodeId): Promise<ConfState> {
    return new Promise((resolve, reject) => this.changeConfCb(type, node, (err, v) => (err ? reject(err) : resolve(v as ConfState))));
  }
  addLearner(node: NodeId): Promise<ConfState> {
    return this.changeConf('addLearner', node);
  }
  promote(node: NodeId): Promise<ConfState> {
    return this.changeConf('addVoter', node);
  }
  remove(node: NodeId): Promise<ConfState> {
    return this.changeConf('removeNode', node);
  }

  /** Hands leadership to `to` (default: the most caught-up other voter); resolves with the new leader. */
  transferLeadership(to?: NodeId): Promise<NodeId> {
    return new Promise((resolve, reject) => {
      if (!this.running) return reject(new HostStoppedError());
      const st = this.node.status();
      if (st.role !== 'leader') return reject(new NotLeaderError(st.leader));
      let target = to;
      if (!target) {
        const progress = st.progress;
        let best = -1;
        for (const v of this.conf.voters) {
          if (v !== this.id && (progress[v]?.match ?? -1) > best) {
            best = progress[v]?.match ?? -1;
            target = v;
          }
        }
      }
      if (!target) return reject(new Error('no other voter to transfer leadership to'));
      const seq = ++this.seq;
      const t = target;
      this.transfers.push({ target: t, seq });
      this.transferWaiters.add(seq, `leadership transfer to ${t}`, this.ticks + this.electionTicks * 3, (err) =>
        err ? reject(err) : resolve(t),
      );
      try {
        this.node.transferLeader(t);
      } catch (err) {
        this.transferWaiters.settle(seq, err as Error);
        return;
      }
      this.kick();
    });
  }

  // ---- the loop ----

  /**
   * Ticks to count at this call of the tick timer: one, as a rule. A busy event loop calls the
   * timer late (with 1,000 agents reconnecting, a few times a second instead of twenty), and a
   * follower whose leader had died waited 18-38 s, not its 3-6 s, to campaign (docs/scale.md, stop
   * 28). So while the transport says the leader's link is down, or no leader is known, a follower or
   * candidate counts the time that passed instead, at most an election timeout per call. A leader
   * that is only slow keeps its link, and its followers keep counting calls: they do not depose it
   * for a stall of their own loop. Pre-vote keeps a follower that misjudged from raising the term.
   */
  private ticksDue(): number {
    const now = this.timers.now?.();
    const transport = this.opts.transport;
    if (now === undefined || !transport.reachable) return 1;
    const last = this.lastTickAt ?? now;
    this.lastTickAt = now;
    if (this.role === 'leader') return 1;
    if (this.leader !== null && transport.reachable(this.leader)) return 1;
    return Math.max(1, Math.min(this.electionTicks, Math.floor((now - last) / this.tickMs)));
  }

  private tick(): void {
    if (!this.running) return;
    for (let n = this.ticksDue(); n > 0 && this.running; n--) {
      this.ticks++;
      this.node.tick();
    }
    if (!this.running) return;
    this.proposals.expire(this.ticks);
    this.confChanges.expire(this.ticks);
    this.reads.expire(this.ticks);
    this.transferWaiters.expire(this.ticks);
    this.transfers = this.transfers.filter((t) => this.transferWaiters.has(t.seq));
    this.kick();
  }

  private kick(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    this.timers.defer(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  /** Processes every pending Ready now. Exposed for the simulator's step-by-step driving. */
  drain(): void {
    if (!this.running || this.draining) return;
    this.draining = true;
    try {
      if (this.pipelined) this.flushProposals();
      for (let i = 0; i < 10_000 && this.running && this.node.hasReady(); i++) this.handleReady(this.node.ready());
    } catch (err) {
      this.halt(err as Error);
      this.opts.onFatal?.(err as Error);
    } finally {
      this.draining = false;
    }
  }

  private handleReady(rd: Ready): void {
    const obs = this.opts.observer;
    let becameLeader = false;
    if (rd.softState) {
      becameLeader = rd.softState.role === 'leader' && this.role !== 'leader';
      const changed = rd.softState.role !== this.role || rd.softState.leader !== this.leader;
      this.role = rd.softState.role;
      this.leader = rd.softState.leader;
      if (changed) queueMicrotask(() => obs?.roleChanged?.(this.id, this.role, this.leader));
      for (const t of this.transfers) if (t.target === this.leader) this.transferWaiters.settle(t.seq, null, t.target);
      // A leader that was sent proposals is gone: their callers need not wait out the timeout (the
      // entries may still commit if it had replicated them, so the answer is "unknown", not "lost").
      if (changed && this.forwarded.size) {
        for (const [seq, to] of [...this.forwarded]) {
          if (to !== this.leader) this.proposals.settle(seq, new OutcomeUnknownError(`proposal forwarded to leader ${to}`, 'was not answered before a new leader took over'));
        }
      }
      // Reads sent to a leader that is gone would wait out their bound: ask the new one (after this
      // ready; a late answer from the old one is harmless, the first index settles the read).
      if (changed && this.leader && this.reads.size) queueMicrotask(() => this.reaskReads());
    }
    if (this.pipelined && !rd.snapshot && !this.loneVoter()) {
      if (!this.readyPipelined(rd, becameLeader)) return;
    } else if (!this.readyInOrder(rd, becameLeader)) return;
    this.node.advance(rd);
    this.maybeSnapshot();
  }

  /**
   * A lone voter (the one-host daemon) keeps the plain order even on a disk that could pipeline: it
   * waits for nobody, so with the daemon's microtask drain a write is durable and applied before the
   * event loop moves on, which its stages count on (a task seen complete has its desired state moved
   * in the same turn, test/integration/one-host.test.ts). Pipelining pays with peers to overlap with.
   */
  private loneVoter(): boolean {
    const v = this.conf.voters;
    return v.length === 1 && v[0] === this.id;
  }

  /** Persist (one fsync), then send, then apply: each ready durable before anything of it leaves. False when stopped meanwhile. */
  private readyInOrder(rd: Ready, becameLeader: boolean): boolean {
    const obs = this.opts.observer;
    // Pipelined, and a snapshot arrived: what was written before it goes to disk first.
    this.sync?.flushNow();
    if (!this.running) return false;
    // 1. persist: one fsync for the snapshot marker, entries and hard state of this ready.
    if (rd.snapshot) this.wal.saveSnapshot(rd.snapshot, true);
    if (this.opts.groupCommit === false && rd.entries.length > 1) {
      // The ablation of group commit (bench/raft.ts): every entry pays its own fdatasync.
      for (const e of rd.entries) this.wal.save(undefined, [e], true);
      this.wal.save(rd.hardState, [], rd.mustSync || !!rd.snapshot);
    } else {
      this.wal.save(rd.hardState, rd.entries, rd.mustSync || !!rd.snapshot);
    }
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (this.sync) {
      const last = rd.entries[rd.entries.length - 1];
      if (rd.snapshot) this.node.persisted(rd.snapshot.meta.index, rd.snapshot.meta.term);
      if (last) this.node.persisted(last.index, last.term);
      if (rd.hardState) {
        this.savedTerm = rd.hardState.term;
        this.savedVote = rd.hardState.vote;
      }
    }
    if (obs?.persisted && rd.entries.length) obs.persisted(this.id, rd.entries, this.storage);
    if (becameLeader) obs?.becameLeader?.(this.id, this.node.status().term, this.storage);
    // 2. send, only now that it is durable.
    if (rd.messages.length) this.opts.transport.send(rd.messages);
    // 3. apply.
    if (rd.snapshot && rd.snapshot.meta.index > this.applied) {
      this.opts.stateMachine.restore(rd.snapshot.data, rd.snapshot.meta.index);
      this.applied = rd.snapshot.meta.index;
      obs?.restored?.(this.id, rd.snapshot.meta.index, rd.snapshot.meta.term);
      this.conf = { voters: [...rd.snapshot.meta.conf.voters], learners: [...rd.snapshot.meta.conf.learners] };
    }
    // 4. reads.
    return this.applyAndRead(rd);
  }

  /**
   * Write now, fsync with the next group (group-sync.ts). A leader's messages leave at once: a
   * follower's copy counts toward the quorum, ours only once node.persisted says it is durable, so
   * nothing commits on a copy that is not on disk. Everything else a ready sends (acknowledgements,
   * votes, answers after a term change) claims durability and waits for the fsync. Committed
   * entries are applied at once, as etcd does with async storage writes: committed means a quorum
   * has them on disk, whether or not this node's own fsync finished (with the leader's disk slow,
   * two followers' fsyncs answer the proposer). False when stopped meanwhile.
   */
  private readyPipelined(rd: Ready, becameLeader: boolean): boolean {
    const obs = this.opts.observer;
    const sync = this.sync!;
    const hs = rd.hardState;
    const termOrVote = !!hs && (hs.term !== this.savedTerm || hs.vote !== this.savedVote);
    const entries = rd.entries;
    if (hs || entries.length) {
      this.wal.save(hs, entries, false);
      this.storage.append(entries);
      if (hs) {
        this.storage.setHardState(hs);
        this.savedTerm = hs.term;
        this.savedVote = hs.vote;
      }
      const last = entries[entries.length - 1];
      sync.wrote(last ? { index: last.index, term: last.term } : null, entries.length > 0 || termOrVote);
    }
    if (becameLeader) obs?.becameLeader?.(this.id, this.node.status().term, this.storage);
    const early = this.role === 'leader' && !termOrVote && this.opts.parallelLeaderAppend !== false;
    if (early && rd.messages.length) this.opts.transport.send(rd.messages);
    const late = early ? [] : rd.messages;
    const observe = !!obs?.persisted && entries.length > 0;
    if (late.length || observe) {
      sync.afterSync(() => {
        if (observe) obs!.persisted!(this.id, entries, this.storage);
        if (late.length && this.running) this.opts.transport.send(late);
      });
    }
    // A follower's acknowledgement waits for the fsync's callback, and that waits for the loop: with
    // large entries to apply (ten services' tasks: 1.8 MB, 100-200 ms on a busy host), the leader
    // would hear only after the apply, and its next commit wait that long (docs/scale.md, stop 30).
    // So the follower syncs on the loop first (a millisecond or so) and its acknowledgement leaves
    // before it applies.
    if (late.length && !early && sizeOf(rd.committed) > SYNC_BEFORE_APPLY_BYTES) {
      sync.flushNow();
      if (!this.running) return false;
    }
    return this.applyAndRead(rd);
  }

  /** Apply what the ready committed, then settle the reads it answers. False when stopped meanwhile. */
  private applyAndRead(rd: Ready): boolean {
    for (const e of rd.committed) {
      if (e.index > this.applied) this.applyEntry(e);
      if (!this.running) return false; // a callback stopped us (e.g. after our own removal)
    }
    this.noteReadStates(rd);
    this.settleReads();
    return true;
  }

  private noteReadStates(rd: Ready): void {
    for (const rs of rd.readStates) {
      const env = unwrap(rs.context);
      if (!env || env.incarnationHi !== this.incHi || env.incarnationLo !== this.incLo) continue;
      if (this.reads.has(env.seq)) this.readsAtIndex.push({ index: rs.index, seq: env.seq });
    }
  }

  /** Reads whose read index is applied now are answered. */
  private settleReads(): void {
    if (this.readsAtIndex.length === 0) return;
    const still: { index: number; seq: number }[] = [];
    for (const r of this.readsAtIndex) {
      if (r.index <= this.applied) this.reads.settle(r.seq, null, r.index);
      else if (this.reads.has(r.seq)) still.push(r);
    }
    this.readsAtIndex = still;
  }

  private mine(env: { incarnationHi: number; incarnationLo: number } | null): boolean {
    return !!env && env.incarnationHi === this.incHi && env.incarnationLo === this.incLo;
  }

  private applyEntry(e: Entry): void {
    this.applied = e.index;
    this.opts.observer?.applied?.(this.id, e);
    if (e.type === 'conf') {
      const cc = decodeConfChange(e.data);
      this.conf = this.node.applyConfChange(cc);
      this.storage.setConfState(this.conf);
      this.wal.saveConfState(this.conf);
      const env = cc.context ? unwrap(cc.context) : null;
      if (this.mine(env)) this.confChanges.settle(env!.seq, null, this.conf);
      return;
    }
    if (e.data.length === 0) return; // a new leader's empty entry
    const env = unwrap(e.data);
    let result: unknown;
    let failure: Error | null = null;
    try {
      const local = this.mine(env) ? this.locals.get(env!.seq) : undefined;
      result = this.opts.stateMachine.apply(e.index, env ? env.payload : e.data, local);
    } catch (err) {
      // An entry this build cannot read halts the host (drain's catch): never skipped past.
      if (err instanceof UnreadableEntryError) throw err;
      failure = err as Error;
    }
    if (this.mine(env)) {
      // Our proposals enter the log in seq order: older ones still waiting were overwritten.
      this.proposals.settleBelow(env!.seq, () => new ProposalLostError('overwritten after a leader change'));
      this.proposals.settle(env!.seq, failure, result);
    }
  }

  private maybeSnapshot(): void {
    const setting = this.opts.snapshotInterval ?? 10_000;
    const interval = typeof setting === 'function' ? setting() : setting;
    const snapIndex = this.storage.snapshot().meta.index;
    if (this.applied - snapIndex < interval) return;
    if (this.snapshotSaving) return;
    const snap = this.storage.createSnapshot(this.applied, this.conf, this.opts.stateMachine.snapshot());
    const compactTo = this.applied - (this.opts.snapshotTailEntries ?? 500);
    const compact = () => {
      if (compactTo < this.storage.firstIndex()) return;
      this.storage.compact(compactTo);
      this.wal.compact(compactTo);
    };
    if (!this.sync || !this.wal.canSnapshotAsync) {
      this.wal.saveSnapshot(snap);
      compact();
      return;
    }
    // Pipelined: the snapshot's fsyncs run off the loop too (they stalled it several ms each time);
    // the log is compacted only once the snapshot is durable.
    this.snapshotSaving = true;
    const wal = this.wal;
    wal.saveSnapshotAsync(snap, (err) => {
      if (this.wal !== wal || !this.running) return; // stopped (and maybe started again) meanwhile
      this.snapshotSaving = false;
      if (err) {
        this.halt(err);
        this.opts.onFatal?.(err);
        return;
      }
      this.sync!.wrote(null, false); // the marker, with the next fsync
      compact();
    });
  }
}
