import { afterEach, describe, expect, test } from 'bun:test';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeDisk } from './disk.ts';
import { Wal, WalCorruptionError } from './wal.ts';
import type { Entry } from '../raft/index.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(join(tmpdir(), 'shoal-wal-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const ent = (index: number, term = 1, text = `e${index}`): Entry => ({
  index,
  term,
  type: 'normal',
  data: new TextEncoder().encode(text),
});
const disk = new NodeDisk();
const segs = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();

describe('Wal', () => {
  test('replays hard state, entries and conf state after reopen', () => {
    const dir = tempDir();
    const { wal, state } = Wal.open(disk, dir);
    expect(state.entries).toEqual([]);
    expect(state.conf).toBeNull();
    wal.saveConfState({ voters: ['a', 'b'], learners: [] });
    wal.save({ term: 1, vote: 'a', commit: 0 }, [ent(1), ent(2)]);
    wal.save({ term: 1, vote: 'a', commit: 2 }, [ent(3)]);
    wal.close();
    const again = Wal.open(disk, dir).state;
    expect(again.hardState).toEqual({ term: 1, vote: 'a', commit: 2 });
    expect(again.conf).toEqual({ voters: ['a', 'b'], learners: [] });
    expect(again.entries.map((e) => [e.index, new TextDecoder().decode(e.data)])).toEqual([
      [1, 'e1'],
      [2, 'e2'],
      [3, 'e3'],
    ]);
  });

  test('a later write at an existing index replaces the suffix', () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir);
    wal.save(undefined, [ent(1), ent(2), ent(3), ent(4)]);
    wal.save({ term: 2, vote: null, commit: 1 }, [ent(3, 2, 'x3')]);
    wal.close();
    const { state } = Wal.open(disk, dir);
    expect(state.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
      [3, 2],
    ]);
  });

  test('a torn record at the tail is truncated and the log stays writable', () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir);
    wal.save({ term: 1, vote: null, commit: 0 }, [ent(1), ent(2)]);
    wal.close();
    const path = join(dir, segs(dir)[0]!);
    const goodSize = fs.statSync(path).size;
    // Half of a record: a header that promises more bytes than exist.
    fs.appendFileSync(path, new Uint8Array([200, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9]));
    const reopened = Wal.open(disk, dir);
    expect(reopened.state.entries.length).toBe(2);
    expect(fs.statSync(path).size).toBe(goodSize);
    reopened.wal.save(undefined, [ent(3)]);
    reopened.wal.close();
    expect(Wal.open(disk, dir).state.entries.length).toBe(3);
  });

  test('a bad checksum followed by valid records refuses to start, naming file, offset and record', () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir);
    wal.save(undefined, [ent(1)]); // record #1 (the segment starts with a hard state record #0)
    wal.save(undefined, [ent(2)]); // record #2
    wal.save(undefined, [ent(3)]);
    wal.close();
    const path = join(dir, segs(dir)[0]!);
    const buf = fs.readFileSync(path);
    const len0 = buf.readUInt32LE(0);
    const off1 = 8 + len0;
    const len1 = buf.readUInt32LE(off1);
    const off2 = off1 + 8 + len1;
    buf[off2 + 12] ^= 0xff; // inside record #2's payload
    fs.writeFileSync(path, buf);
    let err: unknown;
    try {
      Wal.open(disk, dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WalCorruptionError);
    const c = err as WalCorruptionError;
    expect(c.file).toBe(path);
    expect(c.offsetBytes).toBe(off2);
    expect(c.recordIndex).toBe(2);
    expect(c.message).toContain(path);
    expect(c.message).toContain(`byte ${off2}`);
  });

  test('segments roll at the size bound; compaction removes only segments wholly below the snapshot', () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir, { segmentBytes: 256 });
    for (let i = 1; i <= 60; i++) wal.save({ term: 1, vote: null, commit: i - 1 }, [ent(i, 1, 'x'.repeat(40))]);
    const before = segs(dir).length;
    expect(before).toBeGreaterThan(5);
    wal.saveSnapshot({ meta: { index: 40, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array([7]) });
    const removed = wal.compact(30);
    expect(removed).toBeGreaterThan(0);
    expect(segs(dir).length).toBe(before - removed);
    wal.close();
    const { state } = Wal.open(disk, dir, { segmentBytes: 256 });
    expect(state.snapshot?.meta.index).toBe(40);
    expect([...state.snapshot!.data]).toEqual([7]);
    expect(state.entries[0]!.index).toBe(41);
    expect(state.entries[state.entries.length - 1]!.index).toBe(60);
    expect(state.hardState.commit).toBe(59);
  });

  test('a snapshot from the leader past our log supersedes the old entries', () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir);
    wal.save({ term: 1, vote: null, commit: 3 }, [ent(1), ent(2), ent(3)]);
    wal.saveSnapshot({ meta: { index: 100, term: 3, conf: { voters: ['a', 'b', 'c'], learners: ['d'] } }, data: new Uint8Array() }, true);
    wal.save({ term: 3, vote: null, commit: 100 }, [ent(101, 3)]);
    wal.close();
    const { state } = Wal.open(disk, dir);
    expect(state.entries.map((e) => e.index)).toEqual([101]);
    expect(state.conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(state.hardState.commit).toBe(100);
  });

  test('the latest configuration survives compaction of the segment holding the snapshot marker', () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir, { segmentBytes: 200 });
    wal.save({ term: 1, vote: null, commit: 0 }, [ent(1)]);
    wal.saveSnapshot({ meta: { index: 10, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array() }, true);
    wal.saveConfState({ voters: ['a', 'b'], learners: [] });
    for (let i = 11; i <= 40; i++) wal.save({ term: 1, vote: null, commit: i }, [ent(i, 1, 'y'.repeat(30))]);
    expect(wal.compact(35)).toBe(0); // never past the newest snapshot
    wal.saveSnapshot({ meta: { index: 35, term: 1, conf: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array() });
    for (let i = 41; i <= 50; i++) wal.save({ term: 1, vote: null, commit: i }, [ent(i, 1, 'y'.repeat(30))]);
    expect(wal.compact(35)).toBeGreaterThan(0);
    wal.close();
    const { state } = Wal.open(disk, dir, { segmentBytes: 200 });
    expect(state.conf).toEqual({ voters: ['a', 'b'], learners: [] });
    expect(state.snapshot?.meta.index).toBe(35);
    expect(state.entries[0]!.index).toBe(36);
    expect(state.entries[state.entries.length - 1]!.index).toBe(50);
  });

  test('leftover temp snapshot files are removed on open', () => {
    const dir = tempDir();
    Wal.open(disk, dir).wal.close();
    fs.writeFileSync(join(dir, '0000000000000009.snap.tmp'), 'partial');
    Wal.open(disk, dir).wal.close();
    expect(fs.readdirSync(dir).some((n) => n.endsWith('.tmp'))).toBe(false);
  });

  test("a snapshot saved off the loop is the log's snapshot once done, and a close meanwhile leaves a log that opens", async () => {
    const dir = tempDir();
    const { wal } = Wal.open(disk, dir);
    wal.save({ term: 1, vote: 'a', commit: 3 }, [ent(1), ent(2), ent(3)]);
    expect(wal.canSnapshotAsync).toBe(true);
    const snap = { meta: { index: 3, term: 1, conf: { voters: ['a'], learners: [] } }, data: new TextEncoder().encode('s3') };
    await new Promise<void>((resolve, reject) => wal.saveSnapshotAsync(snap, (err) => (err ? reject(err) : resolve())));
    wal.sync();
    wal.close();
    const again = Wal.open(disk, dir).state;
    expect(again.snapshot?.meta.index).toBe(3);
    expect(new TextDecoder().decode(again.snapshot!.data)).toBe('s3');

    // Closed before the background fsync returns: the next open finds at most a temp file, and removes it.
    const second = Wal.open(disk, dir).wal;
    second.save(undefined, [ent(4)]);
    const snap4 = { meta: { index: 4, term: 1, conf: { voters: ['a'], learners: [] } }, data: new TextEncoder().encode('s4') };
    const outcome = new Promise<Error | null>((resolve) => second.saveSnapshotAsync(snap4, resolve));
    second.close();
    expect((await outcome)?.message).toBe('WAL closed');
    const third = Wal.open(disk, dir).state;
    expect(third.snapshot?.meta.index).toBe(3);
    expect(third.entries.map((e) => e.index)).toEqual([4]);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
