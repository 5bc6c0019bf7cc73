// Simulated time: a priority queue of events. Nothing in the simulation reads the real clock.

interface Event {
  at: number;
  seq: number;
  fn: () => void;
}

export class SimClock {
  nowMs = 0;
  private heap: Event[] = [];
  private seq = 0;

  get pending(): number {
    return this.heap.length;
  }

  at(timeMs: number, fn: () => void): void {
    this.push({ at: Math.max(timeMs, this.nowMs), seq: this.seq++, fn });
  }

  after(delayMs: number, fn: () => void): void {
    this.at(this.nowMs + delayMs, fn);
  }

  /** Runs the next event; false when none is left. */
  step(): boolean {
    const e = this.pop();
    if (!e) return false;
    this.nowMs = e.at;
    e.fn();
    return true;
  }

  peekTime(): number {
    return this.heap.length ? this.heap[0]!.at : Infinity;
  }

  private less(x: Event, y: Event): boolean {
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Event | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
