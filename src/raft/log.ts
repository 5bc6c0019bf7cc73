import { CompactedError } from './errors.ts';
import type { Entry, Snapshot, Storage } from './types.ts';
import { Unstable } from './unstable.ts';
import { limitSize } from './util.ts';

/** The Raft log: the durable part in Storage followed by the unstable part held in memory. */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  /** Highest index the state machine has applied (acknowledged by advance). */
  applied: number;
  /** Highest index handed out for applying (in a Ready not yet advanced). */
  applying: number;
  /**
   * Highest index the host reported durable (persistedTo). Storage may hold entries beyond it that
   * are written but not yet fsynced: with asyncStorageWrites the leader counts itself only up to here.
   */
  persisted: number;

  constructor(readonly storage: Storage, readonly maxCommittedSize = Infinity) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
    // What storage holds when the node starts was read back from disk: durable.
    this.persisted = last;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of entry `i`, or undefined when it is compacted or beyond the end. */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch {
      return undefined;
    }
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /**
   * Append `ents` from a leader whose log matches ours at (index, logTerm). Returns the index of the
   * last new entry, or undefined when the logs do not match there.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) throw new Error(`raft log: entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    if (ents[0].index - 1 < this.committed) throw new Error(`raft log: append at ${ents[0].index} is below committed ${this.committed}`);
    // A suffix replaced is no longer what the disk holds at those indexes.
    if (ents[0].index <= this.persisted) this.persisted = ents[0].index - 1;
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The index of the first entry of `ents` that is new or conflicts with ours; 0 when none. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: where a leader with a
   * log ending at (index, term) can next probe (fast back-tracking).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const t = this.term(index);
      if (t === undefined) return { index, term: 0 };
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot) return false;
    return this.committed > Math.max(this.applying, this.firstIndex() - 1);
  }

  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxCommittedSize);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(c: number): void {
    if (c <= this.committed) return;
    if (c > this.lastIndex()) throw new Error(`raft log: commit ${c} beyond last index ${this.lastIndex()}`);
    this.committed = c;
  }

  /** Commit `maxIndex` if it is in term `term` (only current-term entries are committed by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed) throw new Error(`raft log: applied ${i} beyond committed ${this.committed}`);
    this.applied = Math.max(this.applied, i);
    this.applying = Math.max(this.applying, i);
  }

  acceptApplying(i: number): void {
    this.applying = Math.max(this.applying, i);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  /** The host made entries up to (i, t) durable; a term that no longer matches was overwritten since. */
  persistedTo(i: number, t: number): void {
    if (i > this.persisted && this.matchTerm(i, t)) this.persisted = i;
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Whether a log ending at (lastIndex, term) is at least as up-to-date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries from `i` on, within `maxBytes`. Throws CompactedError when `i` was compacted. */
  entries(i: number, maxBytes?: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** Entries [lo, hi) within maxBytes. Throws CompactedError when lo was compacted. */
  slice(lo: number, hi: number, maxBytes?: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    if (hi > this.lastIndex() + 1) throw new Error(`raft log: slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    const uOffset = this.unstable.offset;
    if (lo < uOffset) {
      out = this.storage.entries(lo, Math.min(hi, uOffset), maxBytes);
      // Storage cut the result short for size: stop here.
      if (out.length < Math.min(hi, uOffset) - lo) return out;
    }
    if (hi > uOffset) {
      const u = this.unstable.slice(Math.max(lo, uOffset), hi);
      out = out.length > 0 ? out.concat(u) : u;
    }
    return limitSize(out, maxBytes);
  }

  restore(s: Snapshot): void {
    // Durable again once the host reports the snapshot persisted.
    this.persisted = Math.min(this.persisted, s.meta.index - 1);
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }
}
