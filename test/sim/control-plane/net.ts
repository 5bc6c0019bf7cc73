/**
 * The simulated network between agents and the leader's dispatcher, and the clock adapters that put
 * every stage, the dispatcher and the session client on simulated time.
 *
 * A link is one agent's path to the managers. Cutting it (a partition, or the agent's host crashing)
 * blackholes every connection open on it: bytes are dropped silently and a close is not seen by the
 * other end, as with a pulled cable; only timeouts on each side end such a connection. Connections
 * opened while the link is cut fail after a connect timeout.
 */
import type { Conn } from '../../../src/manager/dispatcher/conn.ts';
import type { Clock as SessionClock } from '../../../src/manager/dispatcher/clock.ts';
import type { Clock as StageClock } from '../../../src/manager/stage.ts';
import type { SimClock } from '../clock.ts';

/** Simulated ms start at this wall-clock time, so ISO timestamps look like real ones. */
export const EPOCH_MS = 1_800_000_000_000;

export function stageClock(sim: SimClock): StageClock {
  return {
    now: () => EPOCH_MS + sim.nowMs,
    setTimer(ms, fn) {
      let live = true;
      sim.after(Math.max(0, ms), () => { if (live) fn(); });
      return { cancel: () => { live = false; } };
    },
  };
}

export function sessionClock(sim: SimClock): SessionClock {
  const c = stageClock(sim);
  return { now: c.now, setTimer: (ms, fn) => { const t = c.setTimer(ms, fn); return () => t.cancel(); } };
}

export class Link {
  cut = false;
  readonly conns = new Set<SimConn>();

  sever(): void {
    this.cut = true;
    for (const c of this.conns) c.blackholed = true;
    this.conns.clear();
  }
}

/** Two connected ends on `link`; delivery is a microtask later, as with memoryConnPair. */
export function connPair(link: Link): [Conn, Conn] {
  const a = new SimConn(link);
  const b = new SimConn(link);
  a.peer = b;
  b.peer = a;
  link.conns.add(a);
  link.conns.add(b);
  return [a, b];
}

class SimConn implements Conn {
  peer!: SimConn;
  blackholed = false;
  #closed = false;
  #onData: ((b: Uint8Array) => void) | null = null;
  #onClose: ((reason: string) => void)[] = [];

  constructor(private readonly link: Link) {}

  get closed(): boolean { return this.#closed; }

  write(bytes: Uint8Array): void {
    if (this.#closed) throw new Error('connection closed');
    if (this.blackholed) return;
    const copy = bytes.slice();
    const peer = this.peer;
    queueMicrotask(() => { if (!peer.#closed && !peer.blackholed) peer.#onData?.(copy); });
  }

  onData(fn: (bytes: Uint8Array) => void): void { this.#onData = fn; }

  onClose(fn: (reason: string) => void): void {
    if (this.#closed) queueMicrotask(() => fn('closed'));
    else this.#onClose.push(fn);
  }

  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.link.conns.delete(this);
    for (const fn of this.#onClose.splice(0)) fn(reason);
    const peer = this.peer;
    if (!this.blackholed) queueMicrotask(() => { if (!peer.blackholed) peer.close(`peer closed: ${reason}`); });
  }
}
