/**
 * The time source of the mock executor. The simulation passes its own so that task run times, stop
 * grace periods and log timestamps follow simulated time.
 */
export interface MockClock {
  /** ms since the epoch (or since the simulation began). */
  now(): number;
  /** Call `fn` after `ms`; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realClock: MockClock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** A manual clock for tests: time moves only with `advance`. */
export class ManualClock implements MockClock {
  #now: number;
  #timers: { at: number; fn: () => void; seq: number }[] = [];
  #seq = 0;
  constructor(startMs = 0) { this.#now = startMs; }
  now(): number { return this.#now; }
  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.#now + Math.max(0, ms), fn, seq: this.#seq++ };
    this.#timers.push(timer);
    return () => { this.#timers = this.#timers.filter((t) => t !== timer); };
  }
  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = until;
  }
  get pendingTimers(): number { return this.#timers.length; }
}
