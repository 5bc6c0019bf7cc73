/** What the raft host's tests and bench/raft.ts share: a counting state machine, a disk whose background fsyncs can be watched or held. */
import { type DiskFile, NodeDisk } from './disk.ts';
import type { StateMachine } from './proposer.ts';

/** Counts applied entries; its snapshot is the count. */
export class CountingMachine implements StateMachine {
  count = 0;
  apply(): unknown {
    return ++this.count;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.count));
  }
  restore(s: Uint8Array): void {
    this.count = Number(new TextDecoder().decode(s));
  }
}

/** The real disk; subclasses see every file's background fsync (`aroundFsync`: watch it, hold it back). */
export class FsyncHookDisk extends NodeDisk {
  /** Runs one file's background fsync (`sync`) and reports it to the WAL (`done`); as is, at once. */
  protected aroundFsync(sync: (done: (err: Error | null) => void) => void, done: (err: Error | null) => void): void {
    sync(done);
  }

  override open(path: string): DiskFile {
    const f = super.open(path);
    return {
      path: f.path,
      append: (d) => f.append(d),
      fsync: () => f.fsync(),
      close: () => f.close(),
      fsyncAsync: (done) => this.aroundFsync((cb) => f.fsyncAsync!(cb), done),
    };
  }
}
