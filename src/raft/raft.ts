import { handleVoteRequest, hup, TRANSFER_CONTEXT } from './election.ts';
import { ProposalDroppedError } from './errors.ts';
import { RaftLog } from './log.ts';
import { ProgressTracker } from './progress.ts';
import { ReadOnly } from './readonly.ts';
import { bcastAppend, bcastHeartbeat, resendStalledSnapshots, sendAppend, sendTimeoutNow } from './replicate.ts';
import { handleReadIndex, stepLeader } from './step-leader.ts';
import { stepCandidate, stepFollower } from './step-follower.ts';
import type { RaftState, SnapshotReceive, SnapshotSend, StepFn } from './state.ts';
import type { Entry, HardState, Message, NodeId, RaftConfig, ReadState, Role, Snapshot, SoftState } from './types.ts';
import { sizeOf } from './util.ts';

/**
 * The Raft state machine (one node). It reacts to messages and ticks by changing state and queuing
 * messages in `msgs`; RaftNode packages that into Ready values. Role behaviour lives in `stepFn`
 * and `tickFn`, swapped whole by the become* methods.
 */
export class Raft implements RaftState {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  readonly readOnly = new ReadOnly();
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  electionTicks: number;
  heartbeatTicks: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxSizePerMsg: number;
  readonly maxEntriesPerMsg: number;
  readonly maxUncommittedBytes: number;
  readonly snapshotChunkBytes: number;
  readonly asyncStorageWrites: boolean;
  private readonly rand: () => number;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId | null = null;
  /** Index of the newest conf change entry; another is refused until it is applied. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  readonly snapshotSends = new Map<NodeId, SnapshotSend>();
  snapshotRecv: SnapshotReceive | undefined;

  stepFn: StepFn = stepFollower;
  tickFn: () => void = () => this.tickElection();

  constructor(cfg: RaftConfig) {
    if (!cfg.id) throw new Error('raft config: id must be a non-empty node id');
    this.id = cfg.id;
    this.electionTicks = cfg.electionTicks ?? 10;
    this.heartbeatTicks = cfg.heartbeatTicks ?? 1;
    if (this.heartbeatTicks <= 0) throw new Error('raft config: heartbeatTicks must be positive');
    if (this.electionTicks <= this.heartbeatTicks) throw new Error('raft config: electionTicks must exceed heartbeatTicks');
    this.rand = cfg.rand;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.preVote = cfg.preVote ?? true;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.maxEntriesPerMsg = cfg.maxEntriesPerMsg ?? 256;
    this.maxUncommittedBytes = cfg.maxUncommittedBytes ?? Infinity;
    this.snapshotChunkBytes = Math.max(1, cfg.snapshotChunkBytes ?? 512 * 1024);
    this.asyncStorageWrites = cfg.asyncStorageWrites ?? false;
    this.log = new RaftLog(cfg.storage, cfg.maxCommittedSizePerReady ?? Infinity);
    this.trk = new ProgressTracker(Math.max(1, cfg.maxInflightMsgs ?? 256));

    const { hardState, conf } = cfg.storage.initialState();
    this.trk.setConf(conf, this.log.lastIndex() + 1);
    this.loadState(hardState);
    if (cfg.applied !== undefined && cfg.applied > 0) this.log.appliedTo(Math.min(cfg.applied, this.log.committed));
    this.becomeFollower(this.term, null);
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new Error(`raft: hard state commit ${hs.commit} out of range [${this.log.committed}, ${this.log.lastIndex()}]`);
    }
    this.log.commitTo(hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Queue a message; `term` defaults to ours except for the vote family, which set their own. */
  send(m: Omit<Message, 'from' | 'term'> & { term?: number }): void {
    this.msgs.push({ ...m, from: this.id, term: m.term ?? this.term });
  }

  // ---- role changes ----

  /**
   * New election and heartbeat timeouts (a cluster's Spec.Raft changed). The elapsed counts stay;
   * a randomized timeout outside the new [e, 2e) is drawn again, so the change takes effect within
   * this election period, not after the next reset.
   */
  setTimeouts(electionTicks: number, heartbeatTicks: number): void {
    if (!Number.isInteger(heartbeatTicks) || heartbeatTicks <= 0) throw new Error('raft config: heartbeatTicks must be a positive integer');
    if (!Number.isInteger(electionTicks) || electionTicks <= heartbeatTicks) throw new Error('raft config: electionTicks must exceed heartbeatTicks');
    this.electionTicks = electionTicks;
    this.heartbeatTicks = heartbeatTicks;
    if (this.randomizedElectionTimeout < electionTicks || this.randomizedElectionTimeout >= 2 * electionTicks) {
      this.randomizedElectionTimeout = electionTicks + Math.floor(this.rand() * electionTicks);
    }
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.rand() * this.electionTicks);
    this.leadTransferee = null;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    const own = this.asyncStorageWrites ? Math.min(last, this.log.persisted) : last;
    for (const [id, pr] of this.trk.progress) {
      pr.becomeProbe();
      pr.match = id === this.id ? own : 0;
      pr.next = last + 1;
      pr.recentActive = id === this.id;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
    this.snapshotSends.clear();
    this.snapshotRecv = undefined;
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.stepFn = stepFollower;
    this.reset(term);
    this.tickFn = () => this.tickElection();
    this.lead = lead;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become pre-candidate');
    // A pre-candidate keeps its term and vote: the pre-vote changes nothing durable.
    this.stepFn = stepCandidate;
    this.trk.resetVotes();
    this.tickFn = () => this.tickElection();
    this.lead = null;
    this.role = 'preCandidate';
  }

  becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become candidate');
    this.stepFn = stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = () => this.tickElection();
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    if (this.role === 'follower') throw new Error('raft: follower cannot become leader without an election');
    this.stepFn = stepLeader;
    this.reset(this.term);
    this.tickFn = () => this.tickHeartbeat();
    this.lead = this.id;
    this.role = 'leader';
    this.trk.progress.get(this.id)?.becomeReplicate();
    // Entries of earlier terms may be uncommitted conf changes: no new one until they are applied.
    this.pendingConfIndex = this.log.lastIndex();
    // Committing this empty entry of our own term commits everything before it (§5.4.2).
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }]);
    bcastAppend(this);
  }

  // ---- ticks ----

  tick(): void {
    this.tickFn();
  }

  promotable(): boolean {
    return this.trk.isVoter(this.id);
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      hup(this, 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.trk.quorumActive(this.id)) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [id, pr] of this.trk.progress) pr.recentActive = id === this.id;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      bcastHeartbeat(this, this.readOnly.lastPendingContext());
      resendStalledSnapshots(this);
    }
  }

  // ---- proposals ----

  /** Append entries to the leader's log (assigning term and index); false when over the uncommitted budget. */
  appendEntries(es: Entry[]): boolean {
    const size = sizeOf(es);
    if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.maxUncommittedBytes) return false;
    this.uncommittedSize += size;
    let li = this.log.lastIndex();
    const stamped = es.map((e) => ({ ...e, term: this.term, index: ++li }));
    li = this.log.append(stamped);
    // With async storage writes our own acknowledgement comes from RaftNode.persisted, after the fsync.
    if (!this.asyncStorageWrites) this.trk.progress.get(this.id)?.maybeUpdate(li);
    this.maybeCommit();
    return true;
  }

  /** Advance the commit index to what a quorum holds; true when it moved. */
  maybeCommit(): boolean {
    return this.log.maybeCommit(this.trk.committed(), this.term);
  }

  propose(es: Entry[]): void {
    if (this.role !== 'leader') throw new ProposalDroppedError(`not the leader (leader is ${this.lead ?? 'unknown'}); retry on the leader`);
    if (this.leadTransferee !== null) throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} in progress; retry shortly`);
    if (!this.trk.isMember(this.id)) throw new ProposalDroppedError('this node was removed from the configuration');
    for (const e of es) {
      if (e.type !== 'conf') continue;
      if (this.pendingConfIndex > this.log.applied) {
        throw new ProposalDroppedError(`conf change at index ${this.pendingConfIndex} not yet applied; propose one change at a time`);
      }
    }
    if (!this.appendEntries(es)) throw new ProposalDroppedError('too many uncommitted bytes; retry when the log catches up');
    if (es.some((e) => e.type === 'conf')) this.pendingConfIndex = this.log.lastIndex();
    bcastAppend(this);
  }

  readIndex(ctx: Uint8Array): void {
    if (this.role === 'leader') {
      handleReadIndex(this, { type: 'readIndex', from: this.id, to: this.id, term: 0, context: ctx });
    } else if (this.lead !== null) {
      this.send({ type: 'readIndex', to: this.lead, term: 0, context: ctx });
    } else {
      throw new ProposalDroppedError('no leader known for a read index; retry after an election');
    }
  }

  transferLeader(to: NodeId): void {
    if (this.role !== 'leader') throw new ProposalDroppedError(`not the leader (leader is ${this.lead ?? 'unknown'})`);
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isLearner) throw new Error(`transfer target ${to} is not a voter`);
    if (this.leadTransferee === to || to === this.id) return;
    // The transfer must finish within an election timeout, counted from now.
    this.electionElapsed = 0;
    this.leadTransferee = to;
    if (pr.match === this.log.lastIndex()) sendTimeoutNow(this, to);
    else sendAppend(this, to);
  }

  // ---- input ----

  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = m.context !== undefined && sameBytes(m.context, TRANSFER_CONTEXT);
        const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTicks;
        // A node that heard from a leader recently ignores disruptive campaigns (leader lease).
        if (!force && inLease) return;
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // Neither a pre-vote request nor a granted pre-vote moves our term.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term && m.term !== 0) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'append')) {
        // A stale leader (e.g. partitioned, with pre-vote keeping our term from reaching it): our
        // response carries the higher term and makes it step down.
        this.send({ type: 'appendResp', to: m.from });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      handleVoteRequest(this, m);
      return;
    }
    this.stepFn(this, m);
  }

  /** Restore from a snapshot sent by the leader; false when our log already covers it. */
  restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.trk.setConf(s.meta.conf, this.log.lastIndex() + 1);
    return true;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
