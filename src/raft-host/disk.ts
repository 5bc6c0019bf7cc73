// The narrow file-system surface the WAL needs. Synchronous, but for the optional fsyncAsync: a host
// with it keeps taking proposals and sending while the disk syncs (group commit, host.ts); without it
// (the simulator's disk, in memory) the host persists each ready before going on.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../lib/paths.ts';

export interface DiskFile {
  readonly path: string;
  /** Appends at the end of the file (not yet durable). */
  append(data: Uint8Array): void;
  /** Makes every append so far durable. */
  fsync(): void;
  /**
   * Makes every append made before the call durable, off the event loop; `done` runs once it is.
   * Appends may continue meanwhile (they are covered by the next call). close() waits for it.
   */
  fsyncAsync?(done: (err: Error | null) => void): void;
  close(): void;
}

export interface Disk {
  mkdirp(dir: string): void;
  /** File names (not paths) directly inside dir. */
  list(dir: string): string[];
  /** Opens for appending, creating the file when missing. A new name is durable only after fsyncDir. */
  open(path: string): DiskFile;
  read(path: string): Uint8Array;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  truncate(path: string, sizeBytes: number): void;
  fsyncDir(dir: string): void;
  /** fsyncDir off the event loop (optional, as DiskFile.fsyncAsync). */
  fsyncDirAsync?(dir: string, done: (err: Error | null) => void): void;
}

export function pathJoin(dir: string, name: string): string {
  return join(dir, name);
}

class NodeFile implements DiskFile {
  private fd: number;
  /** fdatasyncs in flight on the thread pool: the fd is closed only after them, so its number is not reused under them. */
  private syncing = 0;
  private closeWanted = false;
  constructor(readonly path: string) {
    // The log holds the cluster's state (keys, join tokens): never readable by other users.
    this.fd = fs.openSync(path, 'a', 0o600);
  }
  append(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) off += fs.writeSync(this.fd, data, off, data.length - off);
  }
  fsync(): void {
    fs.fdatasyncSync(this.fd);
  }
  fsyncAsync(done: (err: Error | null) => void): void {
    if (this.fd < 0 || this.closeWanted) return done(new Error(`${this.path}: fsync of a closed WAL file`));
    this.syncing++;
    fs.fdatasync(this.fd, (err) => {
      this.syncing--;
      if (this.closeWanted && this.syncing === 0) this.closeNow();
      done(err);
    });
  }
  close(): void {
    this.closeWanted = true;
    if (this.syncing === 0) this.closeNow();
  }
  private closeNow(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** The real disk, on node:fs. */
export class NodeDisk implements Disk {
  mkdirp(dir: string): void {
    ensurePrivateDir(dir);
  }
  list(dir: string): string[] {
    return fs.readdirSync(dir);
  }
  open(path: string): DiskFile {
    return new NodeFile(path);
  }
  read(path: string): Uint8Array {
    return fs.readFileSync(path);
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  unlink(path: string): void {
    fs.unlinkSync(path);
  }
  truncate(path: string, sizeBytes: number): void {
    fs.truncateSync(path, sizeBytes);
  }
  fsyncDir(dir: string): void {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  fsyncDirAsync(dir: string, done: (err: Error | null) => void): void {
    fs.open(dir, 'r', (err, fd) => {
      if (err) return done(err);
      fs.fsync(fd, (syncErr) => fs.close(fd, () => done(syncErr)));
    });
  }
}
