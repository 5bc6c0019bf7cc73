import { Database } from 'bun:sqlite';
import { AbortedError, ShoalError } from '../lib/errors.ts';
import type { Proposer, StateMachine } from './proposer.ts';

interface Pending {
  entry: Uint8Array;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * A durable, ordered log on one host: the proposer of a cluster that has no Raft peers.
 * Entries are appended in SQLite (WAL journal, synchronous=FULL: a commit is fsynced), so an
 * acknowledged write survives kill -9. Proposals that arrive while a commit is in flight are
 * written together in the next one (group commit).
 */
export class LocalLog implements Proposer {
  private db: Database;
  private queue: Pending[] = [];
  private flushing = false;
  private lastIndex = 0;
  private sinceSnapshot = 0;
  private closed = false;

  constructor(path: string, private readonly sm: StateMachine, private readonly snapshotInterval = 10_000) {
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
    this.db.exec('CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    this.db.exec('CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, data BLOB NOT NULL)');
  }

  /** Rebuild the state machine from the last snapshot and the entries after it. */
  recover(): { index: number; replayed: number } {
    const snap = this.db.query('SELECT idx, data FROM snapshot WHERE id = 1').get() as { idx: number; data: Uint8Array } | null;
    if (snap) this.sm.restore(snap.data, snap.idx);
    this.lastIndex = snap?.idx ?? 0;
    let replayed = 0;
    for (const row of this.db.query('SELECT idx, data FROM entries WHERE idx > ? ORDER BY idx').iterate(this.lastIndex) as Iterable<{ idx: number; data: Uint8Array }>) {
      this.sm.apply(row.idx, row.data);
      this.lastIndex = row.idx;
      replayed++;
    }
    this.sinceSnapshot = replayed;
    return { index: this.lastIndex, replayed };
  }

  propose(entry: Uint8Array, signal?: AbortSignal): Promise<unknown> {
    if (this.closed) return Promise.reject(new ShoalError('the local log is closed'));
    if (signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.flushing) queueMicrotask(() => this.flush());
    });
  }

  async readBarrier(): Promise<void> {}

  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, 1024);
        const first = this.lastIndex + 1;
        try {
          const insert = this.db.prepare('INSERT INTO entries (idx, data) VALUES (?, ?)');
          this.db.transaction(() => {
            batch.forEach((p, i) => insert.run(first + i, p.entry));
          })();
        } catch (e) {
          for (const p of batch) p.reject(e);
          continue;
        }
        batch.forEach((p, i) => {
          this.lastIndex = first + i;
          try {
            p.resolve(this.sm.apply(first + i, p.entry));
          } catch (e) {
            p.reject(e);
          }
        });
        this.sinceSnapshot += batch.length;
        if (this.sinceSnapshot >= this.snapshotInterval) this.compact();
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Write the state machine's snapshot and drop the entries it covers. */
  compact(): void {
    const data = this.sm.snapshot();
    const idx = this.lastIndex;
    this.db.transaction(() => {
      this.db.query('INSERT OR REPLACE INTO snapshot (id, idx, data) VALUES (1, ?, ?)').run(idx, data);
      this.db.query('DELETE FROM entries WHERE idx <= ?').run(idx);
    })();
    this.sinceSnapshot = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new ShoalError('the local log was closed'));
    this.db.close();
  }
}
