// A simulated disk implementing the WAL's Disk. Writes live in memory; fsync makes a file's bytes
// durable, fsyncDir makes a directory's names durable. crash() keeps only what was durable, plus
// (sometimes) a torn prefix of the unsynced tail of a file, as a real disk may.
import { dirname } from 'node:path';
import type { Disk, DiskFile } from '../../src/raft-host/disk.ts';
import type { Rng } from './rng.ts';

interface Inode {
  buf: Uint8Array;
  len: number;
  durableLen: number;
  /** Durable content saved when a truncate cut below durableLen before the next fsync. */
  durableCopy: Uint8Array | null;
}

export class SimDiskError extends Error {
  override readonly name = 'SimDiskError';
}

export class SimDisk implements Disk {
  private names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private dirs = new Set<string>();
  fsyncs = 0;
  bytesWritten = 0;

  mkdirp(dir: string): void {
    this.dirs.add(dir);
  }

  list(dir: string): string[] {
    const out: string[] = [];
    for (const p of this.names.keys()) if (dirname(p) === dir) out.push(p.slice(dir.length + 1));
    return out.sort();
  }

  open(path: string): DiskFile {
    let ino = this.names.get(path);
    if (!ino) {
      ino = { buf: new Uint8Array(256), len: 0, durableLen: 0, durableCopy: null };
      this.names.set(path, ino);
    }
    const node = ino;
    let closed = false;
    return {
      path,
      append: (data) => {
        if (closed) throw new SimDiskError(`append to closed ${path}`);
        grow(node, node.len + data.length);
        node.buf.set(data, node.len);
        node.len += data.length;
        this.bytesWritten += data.length;
      },
      fsync: () => {
        node.durableLen = node.len;
        node.durableCopy = null;
        this.fsyncs++;
      },
      close: () => {
        closed = true;
      },
    };
  }

  read(path: string): Uint8Array {
    const ino = this.names.get(path);
    if (!ino) throw new SimDiskError(`ENOENT: ${path}`);
    return ino.buf.slice(0, ino.len);
  }

  rename(from: string, to: string): void {
    const ino = this.names.get(from);
    if (!ino) throw new SimDiskError(`ENOENT: ${from}`);
    this.names.delete(from);
    this.names.set(to, ino);
  }

  unlink(path: string): void {
    if (!this.names.delete(path)) throw new SimDiskError(`ENOENT: ${path}`);
  }

  truncate(path: string, sizeBytes: number): void {
    const ino = this.names.get(path);
    if (!ino) throw new SimDiskError(`ENOENT: ${path}`);
    if (sizeBytes < ino.durableLen && !ino.durableCopy) ino.durableCopy = ino.buf.slice(0, ino.durableLen);
    ino.len = Math.min(ino.len, sizeBytes);
  }

  fsyncDir(dir: string): void {
    for (const [p, ino] of this.durableNames) if (dirname(p) === dir && this.names.get(p) !== ino) this.durableNames.delete(p);
    for (const [p, ino] of this.names) if (dirname(p) === dir) this.durableNames.set(p, ino);
    this.fsyncs++;
  }

  /**
   * Power loss: unsynced names and bytes vanish. With probability tornChance a file keeps a random
   * prefix of its unsynced tail (a torn last write).
   */
  crash(rng: Rng, tornChance = 0.3): void {
    const next = new Map<string, Inode>();
    const seen = new Map<Inode, Inode>();
    for (const [p, ino] of this.durableNames) {
      let copy = seen.get(ino);
      if (!copy) {
        let content: Uint8Array;
        if (ino.durableCopy) content = ino.durableCopy;
        else {
          let keep = ino.durableLen;
          const unsynced = ino.len - ino.durableLen;
          if (unsynced > 1 && rng.chance(tornChance)) keep += rng.range(1, unsynced - 1);
          content = ino.buf.slice(0, keep);
        }
        copy = { buf: content, len: content.length, durableLen: content.length, durableCopy: null };
        seen.set(ino, copy);
      }
      next.set(p, copy);
    }
    this.names = next;
    this.durableNames = new Map(next);
  }
}

function grow(ino: Inode, need: number): void {
  if (need <= ino.buf.length) return;
  let cap = ino.buf.length;
  while (cap < need) cap *= 2;
  const b = new Uint8Array(cap);
  b.set(ino.buf.subarray(0, ino.len));
  ino.buf = b;
}
