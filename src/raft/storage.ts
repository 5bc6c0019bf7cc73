import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.ts';
import type { ConfState, Entry, HardState, Snapshot, Storage } from './types.ts';
import { limitSize } from './util.ts';

/**
 * An in-memory Storage. The core only reads it; the host writes to it after each Ready:
 * setHardState, append, applySnapshot; and compacts it with createSnapshot + compact.
 * ents[0] is a dummy entry holding the index and term of the last compacted entry.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) };
  private conf: ConfState = { voters: [], learners: [] };
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }];

  /** A fresh storage whose configuration is `conf` (how a brand-new cluster bootstraps). */
  static withConf(conf: ConfState): MemoryStorage {
    const s = new MemoryStorage();
    s.conf = cloneConf(conf);
    s.snap.meta.conf = cloneConf(conf);
    return s;
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: { ...this.hardState }, conf: cloneConf(this.conf) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /** Record the configuration after the host called applyConfChange, so a restart sees it. */
  setConfState(conf: ConfState): void {
    this.conf = cloneConf(conf);
  }

  private get offset(): number {
    return this.ents[0].index;
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo <= this.offset) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - this.offset, hi - this.offset), maxBytes);
  }

  term(index: number): number {
    if (index < this.offset) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return this.ents[index - this.offset].term;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace everything with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index < this.snap.meta.index) throw new SnapshotOutOfDateError(snap.meta.index, this.snap.meta.index);
    this.snap = snap;
    this.conf = cloneConf(snap.meta.conf);
    this.ents = [{ term: snap.meta.term, index: snap.meta.index, type: 'normal', data: new Uint8Array(0) }];
    if (this.hardState.commit < snap.meta.index) this.hardState = { ...this.hardState, commit: snap.meta.index };
  }

  /** Record a snapshot of the state machine at `index` (which must be applied); does not compact. */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) throw new SnapshotOutOfDateError(index, this.snap.meta.index);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.snap = { meta: { index, term: this.term(index), conf: cloneConf(conf) }, data };
    return this.snap;
  }

  /** Drop entries up to and including `compactIndex` (which must be at most the snapshot index, ideally). */
  compact(compactIndex: number): void {
    if (compactIndex <= this.offset) throw new CompactedError(compactIndex, this.firstIndex());
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex, this.lastIndex());
    const i = compactIndex - this.offset;
    const head = this.ents[i];
    this.ents = [{ term: head.term, index: head.index, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(i + 1)];
  }

  /** Append entries; an entry at an existing index truncates the log there first. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const at = entries[0].index - this.offset;
    if (at > this.ents.length) throw new UnavailableError(entries[0].index, this.lastIndex());
    // In place: readers get copies (entries() slices), and appends at the end are the common case.
    this.ents.length = at;
    for (const e of entries) this.ents.push(e);
  }
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}
