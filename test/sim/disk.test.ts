import { describe, expect, test } from 'bun:test';
import { Wal } from '../../src/raft-host/wal.ts';
import { SimDisk } from './disk.ts';
import { Rng } from './rng.ts';

const ent = (index: number, term = 1) => ({ index, term, type: 'normal' as const, data: new Uint8Array([index & 255, 1, 2, 3]) });

describe('SimDisk under the WAL', () => {
  test('a crash keeps every fsynced record and the WAL reopens over any torn tail', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = new Rng(seed);
      const disk = new SimDisk();
      let { wal } = Wal.open(disk, '/d', { segmentBytes: 300 });
      let synced = 0;
      let written = 0;
      for (let round = 0; round < 4; round++) {
        const n = rng.range(1, 30);
        for (let i = 0; i < n; i++) {
          const sync = rng.chance(0.5);
          wal.save({ term: 1, vote: null, commit: written }, [ent(written + 1)], sync);
          written++;
          if (sync) synced = written;
        }
        disk.crash(rng, 0.7);
        const reopened = Wal.open(disk, '/d', { segmentBytes: 300 });
        const got = reopened.state.entries.length;
        expect(got).toBeGreaterThanOrEqual(synced);
        expect(got).toBeLessThanOrEqual(written);
        reopened.state.entries.forEach((e, i) => expect(e.index).toBe(i + 1));
        wal = reopened.wal;
        written = got;
        synced = got;
      }
    }
  });

  test('unsynced directory entries vanish on crash', () => {
    const disk = new SimDisk();
    disk.mkdirp('/d');
    const f = disk.open('/d/a');
    f.append(new Uint8Array([1]));
    f.fsync();
    disk.crash(new Rng(1));
    expect(disk.list('/d')).toEqual([]);
    const g = disk.open('/d/b');
    g.append(new Uint8Array([1, 2]));
    g.fsync();
    disk.fsyncDir('/d');
    disk.crash(new Rng(1));
    expect(disk.list('/d')).toEqual(['b']);
    expect([...disk.read('/d/b')]).toEqual([1, 2]);
  });
});

describe('Rng', () => {
  test('same seed, same stream; different seeds differ', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.u32())).not.toEqual(xs);
    for (let i = 0; i < 1000; i++) {
      const v = a.next();
      expect(v >= 0 && v < 1).toBe(true);
    }
  });
});
