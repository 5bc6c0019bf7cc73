/** Shared by the host announcement, directory and gossip tests. */
import type { Clock } from '../manager/dispatcher/clock.ts';
import type { HostAnnouncement } from './host-announcement.ts';

/** Time moves only with `advance`; due timers fire in order. */
export class FakeClock implements Clock {
  t = 1_000_000;
  #timers: { at: number; fn: () => void; n: number }[] = [];
  #n = 0;
  now(): number { return this.t; }
  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + Math.max(0, ms), fn, n: this.#n++ };
    this.#timers.push(timer);
    return () => { this.#timers = this.#timers.filter((x) => x !== timer); };
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = this.#timers.filter((x) => x.at <= until).sort((a, b) => a.at - b.at || a.n - b.n)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = until;
  }
  get pending(): number { return this.#timers.length; }
}

export function ann(node: string, over: Partial<HostAnnouncement> = {}): HostAnnouncement {
  return { t: 'host', v: 1, node, seq: 1, incarnation: 100, role: 'worker', addr: '10.0.0.1', nets: {}, ...over };
}
