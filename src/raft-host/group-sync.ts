// Group commit for the raft host's WAL: one fdatasync covers every record written before it started,
// runs off the event loop, and the next batch is written (not synced) meanwhile; at most one is in
// flight, so a burst of readies costs one fsync per fsync time, not one per ready. Work that needs
// what was written so far on disk (a follower's acknowledgement, a vote, the leader's own count in
// the quorum) waits in order for the fsync that covers it.

/** The last entry a write put in the log: what an fsync that covers the write makes durable. */
export interface LogPosition {
  index: number;
  term: number;
}

export interface GroupSyncHooks {
  /** Starts one fsync of everything written so far; `done` when it is durable. */
  sync(done: (err: Error | null) => void): void;
  /** Synchronous fsync of everything written so far (before a snapshot is installed). */
  syncNow(): void;
  /** Everything written up to `last` (null: no entries among it) is durable; called before the waiters run. */
  durable(last: LogPosition | null): void;
  /** An fsync failed: the host must stop (the disk can no longer be trusted, as etcd does). */
  failed(err: Error): void;
}

export class GroupSync {
  /** Writes so far, and the last of them that must reach the disk (entries, term or vote). */
  private written = 0;
  private needed = 0;
  private synced = 0;
  private inFlight = false;
  private last: LogPosition | null = null;
  private waiting: { seq: number; run: () => void }[] = [];
  private stopped = false;
  /** fsyncs started (off the loop): against commits, how well the batching does (bench/raft.ts). */
  fsyncs = 0;

  constructor(private readonly hooks: GroupSyncHooks) {}

  /**
   * A ready's records were appended (not synced). `needsSync`: they must reach the disk before what
   * waits on them; a write without (a commit index alone, which a restart can learn again from the
   * leader) rides along with the next fsync and holds nothing back.
   */
  wrote(last: LogPosition | null, needsSync: boolean): void {
    this.written++;
    if (last) this.last = last;
    if (needsSync) {
      this.needed = this.written;
      this.start();
    }
  }

  /** Runs `fn` once every write that must reach the disk so far has: now when it has. */
  afterSync(fn: () => void): void {
    if (this.synced >= this.needed) return fn();
    this.waiting.push({ seq: this.needed, run: fn });
  }

  /** Makes everything written durable now, on the loop, and runs what waited for it. */
  flushNow(): void {
    if (this.stopped || this.synced >= this.written) return;
    this.hooks.syncNow();
    this.finished(this.written, this.last);
  }

  stop(): void {
    this.stopped = true;
    this.waiting = [];
  }

  private start(): void {
    if (this.inFlight || this.stopped || this.synced >= this.needed) return;
    this.inFlight = true;
    this.fsyncs++;
    const upTo = this.written;
    const last = this.last;
    this.hooks.sync((err) => {
      this.inFlight = false;
      if (this.stopped) return;
      if (err) {
        this.stopped = true;
        this.hooks.failed(err);
        return;
      }
      this.finished(upTo, last);
      // What was written while this one ran goes in the next fsync, as one batch.
      this.start();
    });
  }

  private finished(upTo: number, last: LogPosition | null): void {
    if (upTo <= this.synced) return;
    this.synced = upTo;
    this.hooks.durable(last);
    let n = 0;
    while (n < this.waiting.length && this.waiting[n]!.seq <= upTo && !this.stopped) this.waiting[n++]!.run();
    if (n) this.waiting = this.waiting.slice(n);
  }
}
