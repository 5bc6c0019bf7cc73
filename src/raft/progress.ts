import { majorityIndex, quorumActive, voteResult, type VoteResult } from './quorum.ts';
import type { ConfState, NodeId, PeerStatus, ProgressState } from './types.ts';

/** A bounded window of append messages sent but not yet acknowledged, by their last index. */
export class Inflights {
  private buf: { index: number; bytes: number }[] = [];
  bytes = 0;
  constructor(readonly capacity: number, readonly maxBytes = Infinity) {}

  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('inflights: add while full');
    this.buf.push({ index, bytes });
    this.bytes += bytes;
  }

  /** Drop every message whose last index is at most `index` (acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n].index <= index) {
      this.bytes -= this.buf[n].bytes;
      n++;
    }
    if (n > 0) this.buf = this.buf.slice(n);
  }

  /** Forget the oldest message (presumed lost) so a stalled window can move again. */
  freeFirstOne(): void {
    const first = this.buf[0];
    if (first) this.freeLE(first.index);
  }

  full(): boolean {
    return this.buf.length >= this.capacity || this.bytes >= this.maxBytes;
  }

  get count(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf = [];
    this.bytes = 0;
  }
}

/**
 * The leader's view of one follower. probe: send one append per heartbeat until the match is found;
 * replicate: stream appends optimistically (next moves ahead of match) within the inflight bound;
 * snapshot: wait until the follower reports it installed the snapshot.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In snapshot state, the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In probe state: an append was sent, wait for a response or a heartbeat before the next. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, public isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot the follower is known to hold at least the snapshot.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement of `n`; false when it is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Record an append of `count` entries (replicate state moves next ahead optimistically). */
  sentEntries(count: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next += count;
        this.inflights.add(this.next - 1, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * A rejection of the append at `rejected`; `hint` is where the follower suggests to retry.
   * Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  toStatus(): PeerStatus {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive, learner: this.isLearner };
  }
}

/** The configuration plus the leader's progress for every member, and the votes of an election. */
export class ProgressTracker {
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.progress.has(id);
  }

  /** Replace the configuration; progress of new members starts at `next`, of kept members is kept. */
  setConf(conf: ConfState, next: number): void {
    this.voters = [...conf.voters];
    this.learners = conf.learners.filter((id) => !conf.voters.includes(id));
    const members = new Set([...this.voters, ...this.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const learner = !this.voters.includes(id);
      const p = this.progress.get(id);
      if (p) p.isLearner = learner;
      else this.progress.set(id, new Progress(next, this.maxInflight, learner));
    }
  }

  committed(): number {
    return majorityIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  quorumActive(self: NodeId): boolean {
    return quorumActive(this.voters, (id) => id === self || (this.progress.get(id)?.recentActive ?? false));
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: voteResult(this.voters, this.votes) };
  }
}
