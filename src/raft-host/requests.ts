// Callers waiting on the raft host: proposals until applied, reads until their read index is applied,
// conf changes, leadership transfers. Every waiter has a deadline in ticks; none waits forever.
import { OutcomeUnknownError } from './proposer.ts';

export type Callback = (err: Error | null, value?: unknown) => void;

interface Waiter {
  cb: Callback;
  deadlineTick: number;
  what: string;
  detach?: () => void;
}

/** Waiters keyed by a sequence number; insertion order is sequence order. */
export class Waiters {
  private readonly map = new Map<number, Waiter>();
  /** The seqs in the order they were added (ascending), from `head` on; settled ones are skipped lazily. */
  private order: number[] = [];
  private head = 0;

  get size(): number {
    return this.map.size;
  }

  add(seq: number, what: string, deadlineTick: number, cb: Callback, signal?: AbortSignal): void {
    const w: Waiter = { cb, deadlineTick, what };
    if (signal) {
      const onAbort = () => this.settle(seq, signal.reason instanceof Error ? signal.reason : new Error(`${what} aborted`));
      signal.addEventListener('abort', onAbort, { once: true });
      w.detach = () => signal.removeEventListener('abort', onAbort);
    }
    this.map.set(seq, w);
    this.order.push(seq);
    // Bounded however the waiters are settled (reads and conf changes never call settleBelow).
    if (this.order.length - this.head > 2 * this.map.size + 1024) {
      this.order = this.order.slice(this.head).filter((k) => this.map.has(k));
      this.head = 0;
    }
  }

  has(seq: number): boolean {
    return this.map.has(seq);
  }

  seqs(): number[] {
    return [...this.map.keys()];
  }

  settle(seq: number, err: Error | null, value?: unknown): boolean {
    const w = this.map.get(seq);
    if (!w) return false;
    this.map.delete(seq);
    w.detach?.();
    w.cb(err, value);
    return true;
  }

  /**
   * Settles every waiter with a sequence number below `seq`. Called for every entry applied: the
   * oldest waiter is found through `order` (seqs as added, settled ones skipped once) rather than an
   * iterator over the map each time.
   */
  settleBelow(seq: number, err: () => Error): void {
    for (;;) {
      while (this.head < this.order.length && !this.map.has(this.order[this.head]!)) this.head++;
      if (this.head >= this.order.length) {
        this.order.length = 0;
        this.head = 0;
        return;
      }
      const k = this.order[this.head]!;
      if (k >= seq) break;
      this.settle(k, err());
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** Times out waiters whose deadline passed (deadlines grow with seq, so stop at the first alive one). */
  expire(nowTick: number): void {
    for (const [k, w] of this.map) {
      if (w.deadlineTick > nowTick) break;
      this.settle(k, new OutcomeUnknownError(w.what));
    }
  }

  settleAll(err: () => Error): void {
    for (const k of [...this.map.keys()]) this.settle(k, err());
  }
}
