// Simulated time: a priority queue of events. Nothing in the simulation reads the real clock.
import { MinHeap } from '../../src/lib/heap.ts';

interface Event {
  at: number;
  seq: number;
  fn: () => void;
}

export class SimClock {
  nowMs = 0;
  private heap = new MinHeap<Event>((x, y) => x.at < y.at || (x.at === y.at && x.seq < y.seq));
  private seq = 0;

  get pending(): number {
    return this.heap.size;
  }

  at(timeMs: number, fn: () => void): void {
    this.heap.push({ at: Math.max(timeMs, this.nowMs), seq: this.seq++, fn });
  }

  after(delayMs: number, fn: () => void): void {
    this.at(this.nowMs + delayMs, fn);
  }

  /** Runs the next event; false when none is left. */
  step(): boolean {
    const e = this.heap.pop();
    if (!e) return false;
    this.nowMs = e.at;
    e.fn();
    return true;
  }

  peekTime(): number {
    return this.heap.peek()?.at ?? Infinity;
  }
}
