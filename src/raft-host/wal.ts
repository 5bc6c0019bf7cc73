// Write-ahead log for the raft host: hard state, entries and snapshot markers as length-prefixed,
// CRC32-checked records in size-bounded segment files; snapshots in their own files. See
// docs/raft-storage.md for the format and the reasoning.
import { type Disk, type DiskFile, pathJoin } from './disk.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/index.ts';
import { type RecordCipher, SEALED_FLAG, WalKeyError } from './wal-cipher.ts';
import { carriesState, decodeEntries, encodeEntries, encodeRecord, encodeRecordParts, packr, parseAt, RecordType, SNAPSHOT_RECORD, validRecordAfter } from './wal-record.ts';

export { encodeRecord, MAX_RECORD_BYTES, RECORD_HEADER_BYTES } from './wal-record.ts';

export class WalCorruptionError extends Error {
  override readonly name = 'WalCorruptionError';
  constructor(
    readonly file: string,
    readonly offsetBytes: number,
    readonly recordIndex: number,
    reason: string,
  ) {
    super(
      `WAL corrupt: ${file} at byte ${offsetBytes} (record #${recordIndex}): ${reason}. ` +
        `Refusing to start; restore this manager's data dir from a backup or remove it and re-join the cluster.`,
    );
  }
}

/** The log is sealed (wal-cipher.ts) and no data key was given: not damage, a missing key file. */
export class WalKeyMissingError extends Error {
  override readonly name = 'WalKeyMissingError';
  constructor(readonly file: string) {
    super(`${file} is encrypted and no raft data key was given: the manager's key file is missing or locked`);
  }
}

export interface WalOptions {
  /** Roll to a new segment once the current one reaches this size. */
  segmentBytes?: number;
  /** Snapshot files kept (newest first). */
  keepSnapshots?: number;
  /**
   * Seals the entry records and snapshots written (encryption at rest, see carriesState). Ones in
   * the clear are still read, and a log that had any is rewritten sealed when opened (migrateToSealed).
   */
  cipher?: RecordCipher;
}

export interface WalState {
  hardState: HardState;
  /** Latest configuration recorded with saveConfState (or the snapshot's), null for a fresh log. */
  conf: ConfState | null;
  snapshot: Snapshot | null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];
}

interface Segment {
  seq: number;
  name: string;
  /** Highest entry index written into this segment (0 when none). */
  lastIndex: number;
}

const SEGMENT_RE = /^([0-9a-f]{16})\.wal$/;
const SNAP_RE = /^([0-9a-f]{16})\.snap$/;
const hex16 = (n: number) => n.toString(16).padStart(16, '0');

export class Wal {
  private segments: Segment[] = [];
  private file: DiskFile | null = null;
  private fileBytes = 0;
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private conf: ConfState | null = null;
  private lastSnapshot: { index: number; term: number } | null = null;
  private readonly segmentBytes: number;
  private readonly keepSnapshots: number;
  private readonly cipher: RecordCipher | undefined;
  /** Replay met a record or snapshot in the clear while a cipher is set: rewrite the log sealed. */
  private unsealedSeen = false;
  private closed = false;

  private constructor(
    private readonly disk: Disk,
    readonly dir: string,
    opts: WalOptions,
  ) {
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.keepSnapshots = Math.max(1, opts.keepSnapshots ?? 2);
    this.cipher = opts.cipher;
  }

  /** A record of `type`, sealed when the log has a cipher. */
  private record(type: number, payload: Uint8Array): Uint8Array {
    return this.cipher && carriesState(type) ? encodeRecord(type | SEALED_FLAG, this.cipher.seal(type, payload)) : encodeRecord(type, payload);
  }

  /** A parsed record's type and payload in the clear. */
  private unseal(file: string, type: number, payload: Uint8Array): { type: number; payload: Uint8Array } {
    if (!(type & SEALED_FLAG)) {
      if (this.cipher && carriesState(type)) this.unsealedSeen = true;
      return { type, payload };
    }
    if (!this.cipher) throw new WalKeyMissingError(file);
    const plain = type & ~SEALED_FLAG;
    return { type: plain, payload: this.cipher.open(plain, payload) };
  }

  /** Opens (creating when empty) and replays the log. Truncates a torn tail; throws WalCorruptionError otherwise. */
  static open(disk: Disk, dir: string, opts: WalOptions = {}): { wal: Wal; state: WalState } {
    const wal = new Wal(disk, dir, opts);
    const state = wal.replay();
    if (wal.unsealedSeen) wal.migrateToSealed(state);
    return { wal, state };
  }

  private replay(): WalState {
    const { disk, dir } = this;
    disk.mkdirp(dir);
    const names = disk.list(dir);
    for (const n of names) if (n.endsWith('.tmp')) disk.unlink(pathJoin(dir, n));

    const snapshot = this.loadNewestSnapshot(names.filter((n) => SNAP_RE.test(n)).sort());
    const segNames = names.filter((n) => SEGMENT_RE.test(n)).sort();
    let entries: Entry[] = [];
    // Index of entries[0]; entries are contiguous from there.
    let hs: HardState = { term: 0, vote: null, commit: 0 };
    let conf: ConfState | null = null;
    let markerSeen = false;
    let truncated = false;

    for (let si = 0; si < segNames.length; si++) {
      const name = segNames[si]!;
      const path = pathJoin(dir, name);
      const buf = disk.read(path);
      const isLast = si === segNames.length - 1;
      const seg: Segment = { seq: parseInt(SEGMENT_RE.exec(name)![1]!, 16), name, lastIndex: 0 };
      let off = 0;
      let rec = 0;
      while (off < buf.length) {
        const p = parseAt(buf, off);
        if (!p.ok) {
          if (!isLast || validRecordAfter(buf, off)) throw new WalCorruptionError(path, off, rec, p.reason);
          // Torn tail of the last segment: an append that never completed its fsync.
          disk.truncate(path, off);
          truncated = true;
          break;
        }
        try {
          const { type, payload } = this.unseal(path, p.type, p.payload);
          switch (type) {
            case RecordType.HardState: {
              const [term, vote, commit] = packr.unpack(payload) as [number, string | null, number];
              hs = { term, vote, commit };
              break;
            }
            case RecordType.Entries: {
              const batch = decodeEntries(payload);
              if (batch.length === 0) break;
              const first = batch[0]!.index;
              const start = entries.length ? entries[0]!.index : first;
              const end = start + entries.length; // next expected index
              if (first > end && entries.length) throw new Error(`gap: entry ${first} after ${end - 1}`);
              if (first < start) entries = [];
              else entries.length = first - start; // conflicting suffix is overwritten
              for (const e of batch) entries.push(e);
              seg.lastIndex = Math.max(seg.lastIndex, batch[batch.length - 1]!.index);
              break;
            }
            case RecordType.SnapshotMarker: {
              const [index, , adopt] = packr.unpack(payload) as [number, number, number];
              // A snapshot from the leader jumps past our log: what we had below it is superseded.
              if (entries.length && entries[entries.length - 1]!.index < index) entries = [];
              if (snapshot && index === snapshot.meta.index) {
                markerSeen = true;
                if (adopt) conf = snapshot.meta.conf;
              }
              break;
            }
            case RecordType.ConfState: {
              const [voters, learners] = packr.unpack(payload) as [string[], string[]];
              conf = { voters, learners };
              break;
            }
            default:
              throw new Error(`unknown record type ${type}`);
          }
        } catch (err) {
          if (err instanceof WalCorruptionError || err instanceof WalKeyMissingError) throw err;
          throw new WalCorruptionError(path, off, rec, (err as Error).message);
        }
        off = p.next;
        rec++;
      }
      this.segments.push(seg);
    }

    if (snapshot) {
      const si = snapshot.meta.index;
      entries = entries.filter((e) => e.index > si);
      if (entries.length && entries[0]!.index !== si + 1) {
        throw new WalCorruptionError(dir, 0, 0, `entries resume at ${entries[0]!.index} after snapshot ${si}`);
      }
      if (hs.commit < si) hs = { ...hs, commit: si };
      if (hs.term < snapshot.meta.term) hs = { ...hs, term: snapshot.meta.term };
    }
    // A snapshot whose marker never made it (crash right after the rename) was received from a leader
    // or taken locally; its conf is at least a consistent configuration to start from.
    if (snapshot && (!conf || !markerSeen)) conf = snapshot.meta.conf;
    this.hardState = hs;
    this.conf = conf;
    if (snapshot) this.lastSnapshot = { index: snapshot.meta.index, term: snapshot.meta.term };
    if (this.segments.length === 0) this.rollSegment();
    else {
      const last = this.segments[this.segments.length - 1]!;
      const path = pathJoin(dir, last.name);
      this.file = disk.open(path);
      this.fileBytes = disk.read(path).length;
      if (truncated) this.file.fsync();
    }
    if (snapshot && !markerSeen) {
      // Make later replays see the jump past the old log before any entry appended after it.
      const marker = this.record(RecordType.SnapshotMarker, packr.pack([snapshot.meta.index, snapshot.meta.term, 1]));
      this.file!.append(marker);
      this.fileBytes += marker.length;
      this.file!.fsync();
    }
    return { hardState: hs, conf, snapshot, entries };
  }

  private loadNewestSnapshot(snapNames: string[]): Snapshot | null {
    for (let i = snapNames.length - 1; i >= 0; i--) {
      const path = pathJoin(this.dir, snapNames[i]!);
      const buf = this.disk.read(path);
      const p = parseAt(buf, 0);
      // A snapshot file is renamed into place only after its fsync, so damage is real corruption.
      if (!p.ok || p.next !== buf.length) throw new WalCorruptionError(path, 0, 0, p.ok ? 'trailing bytes' : p.reason);
      let payload: Uint8Array;
      try {
        payload = this.unseal(path, p.type, p.payload).payload;
      } catch (err) {
        if (err instanceof WalKeyError) throw new WalCorruptionError(path, 0, 0, err.message);
        throw err;
      }
      const [index, term, voters, learners, data] = packr.unpack(payload) as [number, number, string[], string[], Uint8Array];
      return { meta: { index, term, conf: { voters, learners } }, data: new Uint8Array(data) };
    }
    return null;
  }

  private rollSegment(): void {
    const seq = this.segments.length ? this.segments[this.segments.length - 1]!.seq + 1 : 0;
    const name = `${hex16(seq)}.wal`;
    // A segment is sealed durable before the next starts: only the last one may have a torn tail.
    this.file?.fsync();
    this.file?.close();
    this.file = this.disk.open(pathJoin(this.dir, name));
    this.fileBytes = 0;
    this.segments.push({ seq, name, lastIndex: 0 });
    // The newest hard state opens every segment, so older segments only ever matter for entries.
    const rec = this.record(RecordType.HardState, packr.pack([this.hardState.term, this.hardState.vote, this.hardState.commit]));
    this.file.append(rec);
    this.fileBytes += rec.length;
    if (this.conf) {
      const c = this.record(RecordType.ConfState, packr.pack([this.conf.voters, this.conf.learners]));
      this.file.append(c);
      this.fileBytes += c.length;
    }
    // And the newest snapshot's marker, so it survives compaction of the segment that first held it.
    if (this.lastSnapshot) {
      const m = this.record(RecordType.SnapshotMarker, packr.pack([this.lastSnapshot.index, this.lastSnapshot.term, 0]));
      this.file.append(m);
      this.fileBytes += m.length;
    }
    this.file.fsync();
    this.disk.fsyncDir(this.dir);
  }

  /**
   * Appends a hard state and/or entries and fsyncs once. Entries may overwrite a suffix (raft
   * conflict resolution); replay honours the latest write for each index.
   */
  save(hardState: HardState | undefined, entries: Entry[], sync = true): void {
    if (this.closed) throw new Error('WAL closed');
    if (!hardState && entries.length === 0) return;
    if (this.fileBytes >= this.segmentBytes) this.rollSegment();
    const parts: Uint8Array[] = [];
    if (entries.length) {
      const payload = encodeEntries(entries);
      parts.push(...(this.cipher ? encodeRecordParts(RecordType.Entries | SEALED_FLAG, this.cipher.seal(RecordType.Entries, payload)) : encodeRecordParts(RecordType.Entries, payload)));
      const seg = this.segments[this.segments.length - 1]!;
      seg.lastIndex = Math.max(seg.lastIndex, entries[entries.length - 1]!.index);
    }
    if (hardState) {
      this.hardState = { ...hardState };
      parts.push(this.record(RecordType.HardState, packr.pack([hardState.term, hardState.vote, hardState.commit])));
    }
    // One write per part rather than a copy of a large entries record into one buffer: a record
    // torn between its parts is a torn tail like any other.
    for (const buf of parts) {
      this.file!.append(buf);
      this.fileBytes += buf.length;
    }
    if (sync) this.file!.fsync();
  }

  /** Whether syncAsync is there (the disk can fsync off the event loop). */
  get canSyncAsync(): boolean {
    return typeof this.file?.fsyncAsync === 'function';
  }

  /** Makes every record saved so far durable, now. */
  sync(): void {
    if (this.closed) throw new Error('WAL closed');
    this.file!.fsync();
  }

  /**
   * Makes every record saved so far durable, off the event loop (saves may go on meanwhile; a
   * segment rolled meanwhile was fsynced when it was closed). `done` runs once it is durable.
   */
  syncAsync(done: (err: Error | null) => void): void {
    if (this.closed || !this.file?.fsyncAsync) return done(new Error('WAL closed'));
    this.file.fsyncAsync(done);
  }

  /** Records the configuration after an applied conf change (or at bootstrap), durably. */
  saveConfState(conf: ConfState): void {
    if (this.closed) throw new Error('WAL closed');
    this.conf = { voters: [...conf.voters], learners: [...conf.learners] };
    const rec = this.record(RecordType.ConfState, packr.pack([this.conf.voters, this.conf.learners]));
    this.file!.append(rec);
    this.fileBytes += rec.length;
    this.file!.fsync();
  }

  /**
   * Writes a snapshot file durably (temp name, fsync, rename, dir fsync), then a marker record.
   * `adoptConf`: the snapshot came from the leader and its configuration replaces ours.
   */
  saveSnapshot(snap: Snapshot, adoptConf = false): void {
    if (this.closed) throw new Error('WAL closed');
    const { index, term, conf } = snap.meta;
    this.writeSnapshotFile(snap);
    if (adoptConf) this.conf = { voters: [...conf.voters], learners: [...conf.learners] };
    this.lastSnapshot = { index, term };
    const marker = this.record(RecordType.SnapshotMarker, packr.pack([index, term, adoptConf ? 1 : 0]));
    this.file!.append(marker);
    this.fileBytes += marker.length;
    this.file!.fsync();
    this.removeOldSnapshots(); // beyond the kept number
  }

  /** Whether saveSnapshotAsync can keep its fsyncs off the event loop on this disk. */
  get canSnapshotAsync(): boolean {
    return this.canSyncAsync && typeof this.disk.fsyncDirAsync === 'function';
  }

  /**
   * saveSnapshot with its fsyncs off the event loop: the file is written under a temp name, fsynced,
   * renamed, the directory fsynced; only then is it this log's snapshot (compaction and new segments
   * go by it) and its marker appended, not synced: the caller's next fsync covers it, and a start
   * that finds the file without its marker writes the marker then. `done` runs after the marker;
   * a log closed meanwhile leaves at most a temp file (deleted at the next start) or a snapshot file
   * with no marker, both handled by replay. Needs canSnapshotAsync.
   */
  saveSnapshotAsync(snap: Snapshot, done: (err: Error | null) => void): void {
    if (this.closed) return done(new Error('WAL closed'));
    const { index, term } = snap.meta;
    const { name, tmp, f } = this.openSnapshotTemp(snap);
    f.fsyncAsync!((err) => {
      f.close();
      if (err || this.closed) return done(err ?? new Error('WAL closed'));
      try {
        this.disk.rename(tmp, pathJoin(this.dir, name));
      } catch (e) {
        return done(e as Error);
      }
      this.disk.fsyncDirAsync!(this.dir, (dirErr) => {
        if (dirErr || this.closed) return done(dirErr ?? new Error('WAL closed'));
        // A leader's snapshot installed meanwhile is newer: ours adds nothing to the log then.
        if (this.lastSnapshot && this.lastSnapshot.index >= index) return done(null);
        try {
          this.lastSnapshot = { index, term };
          const marker = this.record(RecordType.SnapshotMarker, packr.pack([index, term, 0]));
          this.file!.append(marker);
          this.fileBytes += marker.length;
          this.removeOldSnapshots();
        } catch (e) {
          return done(e as Error);
        }
        done(null);
      });
    });
  }

  private removeOldSnapshots(): void {
    const snaps = this.disk.list(this.dir).filter((n) => SNAP_RE.test(n)).sort();
    for (const n of snaps.slice(0, Math.max(0, snaps.length - this.keepSnapshots))) this.disk.unlink(pathJoin(this.dir, n));
  }

  /** The snapshot's record written to `<index>.snap.tmp`, not yet synced. */
  private openSnapshotTemp(snap: Snapshot): { name: string; tmp: string; f: DiskFile } {
    const { index, term, conf } = snap.meta;
    const body = this.record(SNAPSHOT_RECORD, packr.pack([index, term, conf.voters, conf.learners, snap.data]));
    const name = `${hex16(index)}.snap`;
    const tmp = pathJoin(this.dir, name + '.tmp');
    const f = this.disk.open(tmp);
    f.append(body);
    return { name, tmp, f };
  }

  /** `<index>.snap`, durably: temp name, fsync, rename, dir fsync. */
  private writeSnapshotFile(snap: Snapshot): string {
    const { name, tmp, f } = this.openSnapshotTemp(snap);
    f.fsync();
    f.close();
    this.disk.rename(tmp, pathJoin(this.dir, name));
    this.disk.fsyncDir(this.dir);
    return name;
  }

  /**
   * A log written in the clear (before encryption at rest, or without a key) is rewritten sealed
   * when opened with a cipher, rather than left to compaction, which would keep the current segment
   * in the clear until it filled (64 MiB). The newest snapshot is written again under its own name
   * and older ones are removed; a new segment gets the hard state, configuration, snapshot marker and
   * every entry after the snapshot and is fsynced before the old segments are unlinked, so a crash
   * in between replays the old segments and then the new one, which holds the same entries.
   */
  private migrateToSealed(state: WalState): void {
    const snaps = this.disk.list(this.dir).filter((n) => SNAP_RE.test(n));
    const kept = state.snapshot ? this.writeSnapshotFile(state.snapshot) : null;
    for (const n of snaps) if (n !== kept) this.disk.unlink(pathJoin(this.dir, n));
    const old = this.segments.slice();
    this.rollSegment();
    if (state.entries.length) {
      const rec = this.record(RecordType.Entries, encodeEntries(state.entries));
      this.file!.append(rec);
      this.fileBytes += rec.length;
      this.file!.fsync();
      this.segments[this.segments.length - 1]!.lastIndex = state.entries[state.entries.length - 1]!.index;
    }
    for (const seg of old) this.disk.unlink(pathJoin(this.dir, seg.name));
    this.segments = this.segments.slice(old.length);
    this.disk.fsyncDir(this.dir);
    this.unsealedSeen = false;
  }

  /** Deletes whole segments whose entries are all at or below `index` (never the current one). */
  compact(index: number): number {
    // Entries above the newest snapshot are the only copy of committed state: never drop them.
    index = Math.min(index, this.lastSnapshot?.index ?? 0);
    let removed = 0;
    while (this.segments.length > 1 && this.segments[0]!.lastIndex <= index) {
      const seg = this.segments.shift()!;
      this.disk.unlink(pathJoin(this.dir, seg.name));
      removed++;
    }
    if (removed) this.disk.fsyncDir(this.dir);
    return removed;
  }

  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  close(): void {
    this.closed = true;
    this.file?.close();
    this.file = null;
  }
}
