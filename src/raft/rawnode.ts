import { hup } from './election.ts';
import { Raft } from './raft.ts';
import type { ConfChange, ConfState, HardState, Message, NodeId, RaftConfig, Ready, SoftState, Status } from './types.ts';
import { applyConfChange } from './confchange.ts';
import { encodeConfChange } from './confchange-codec.ts';

/**
 * The host-facing wrapper around the state machine: inputs in, Ready values out. Call ready() only
 * when hasReady(), then handle the Ready (see index.ts) and call advance(rd) before the next ready().
 */
export class RaftNode {
  private readonly r: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(cfg: RaftConfig) {
    this.r = new Raft(cfg);
    this.prevSoft = this.r.softState();
    this.prevHard = this.r.hardState();
  }

  tick(): void {
    this.r.tick();
  }

  /** Change the election and heartbeat timeouts, in ticks (Raft.setTimeouts). */
  setTimeouts(electionTicks: number, heartbeatTicks: number): void {
    this.r.setTimeouts(electionTicks, heartbeatTicks);
  }

  get timeouts(): { electionTicks: number; heartbeatTicks: number } {
    return { electionTicks: this.r.electionTicks, heartbeatTicks: this.r.heartbeatTicks };
  }

  /** Feed a message received from a peer. Messages addressed to another node are ignored. */
  step(m: Message): void {
    if (m.to !== this.r.id || m.from === this.r.id) return;
    if (!Number.isSafeInteger(m.term) || m.term < 0) return;
    // Forwarded proposals travel outside the term protocol (term 0); one with a term is malformed.
    if (m.type === 'propose' && m.term !== 0) return;
    this.r.step(m);
  }

  /** Propose data to append; throws ProposalDroppedError when not leader, transferring, or over budget. */
  propose(data: Uint8Array): void {
    this.r.propose([{ term: 0, index: 0, type: 'normal', data }]);
  }

  /** Propose several entries at once: one append per follower carries them all. Throws as propose does. */
  proposeMany(data: Uint8Array[]): void {
    if (data.length === 0) return;
    this.r.propose(data.map((d) => ({ term: 0, index: 0, type: 'normal' as const, data: d })));
  }

  /**
   * With asyncStorageWrites: entries up to (index, term) are durable on this node. On the leader
   * this is its own acknowledgement, counted in the commit quorum like a follower's appendResp.
   */
  persisted(index: number, term: number): void {
    const r = this.r;
    r.log.persistedTo(index, term);
    if (r.role === 'leader') r.step({ type: 'appendResp', from: r.id, to: r.id, term: r.term, index: r.log.persisted });
  }

  /** The highest index reported durable with persisted() (or on disk at start). */
  persistedIndex(): number {
    return this.r.log.persisted;
  }

  /** Propose a membership change; throws ProposalDroppedError while a previous one is unapplied. */
  proposeConfChange(cc: ConfChange): void {
    this.r.propose([{ term: 0, index: 0, type: 'conf', data: encodeConfChange(cc) }]);
  }

  /** Apply a committed conf change entry (call after applying the entry); returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    return applyConfChange(this.r, cc);
  }

  /** Ask the leader to hand leadership to `to` (a voter). Throws ProposalDroppedError when not leader. */
  transferLeader(to: NodeId): void {
    this.r.transferLeader(to);
  }

  /** Request a linearizable read; the answer arrives as a ReadState with the same context. */
  readIndex(ctx: Uint8Array): void {
    this.r.readIndex(ctx);
  }

  /** Start an election now (skips pre-vote's wait, not pre-vote itself). */
  campaign(): void {
    hup(this.r, 'election');
  }

  hasReady(): boolean {
    const r = this.r;
    if (!sameSoft(r.softState(), this.prevSoft)) return true;
    if (!sameHard(r.hardState(), this.prevHard)) return true;
    if (r.log.unstable.snapshot) return true;
    return (
      r.msgs.length > 0 ||
      r.log.unstableEntries().length > 0 ||
      r.log.hasNextCommittedEnts() ||
      r.readStates.length > 0
    );
  }

  ready(): Ready {
    const r = this.r;
    const soft = r.softState();
    const hard = r.hardState();
    const entries = [...r.log.unstableEntries()];
    const committed = r.log.nextCommittedEnts();
    const rd: Ready = {
      entries,
      committed,
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
    };
    if (!sameSoft(soft, this.prevSoft)) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    if (!sameHard(hard, this.prevHard)) {
      rd.hardState = hard;
      this.prevHard = hard;
    }
    const snap = r.log.unstable.snapshot;
    if (snap) {
      rd.snapshot = snap;
      rd.mustSync = true;
    }
    r.msgs = [];
    r.readStates = [];
    if (committed.length > 0) r.log.acceptApplying(committed[committed.length - 1].index);
    return rd;
  }

  advance(rd: Ready): void {
    const r = this.r;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.meta.index);
      r.log.appliedTo(rd.snapshot.meta.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.log.stableTo(last.index, last.term);
    }
    if (rd.committed.length > 0) {
      r.log.appliedTo(rd.committed[rd.committed.length - 1].index);
      if (r.role === 'leader') {
        let bytes = 0;
        for (const e of rd.committed) bytes += e.data.length;
        r.uncommittedSize = Math.max(0, r.uncommittedSize - bytes);
      }
    }
  }

  status(): Status {
    const r = this.r;
    const progress: Status['progress'] = {};
    if (r.role === 'leader') for (const [id, pr] of r.trk.progress) progress[id] = pr.toStatus();
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      conf: r.trk.confState(),
      transferee: r.leadTransferee,
      progress,
    };
  }

  /** The transport could not reach `id`: stop streaming optimistically to it. */
  reportUnreachable(id: NodeId): void {
    const pr = this.r.trk.progress.get(id);
    if (this.r.role === 'leader' && pr && pr.state === 'replicate') pr.becomeProbe();
  }

  /** The host's verdict on a snapshot sent to `id` (false: it failed; retry by probing). */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const r = this.r;
    const pr = r.trk.progress.get(id);
    if (r.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    r.snapshotSends.delete(id);
    pr.becomeProbe();
    // Wait for the next heartbeat response before probing again.
    pr.probeSent = true;
  }
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
