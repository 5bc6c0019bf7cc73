/**
 * Closes connections whose peer stopped answering: a yamux ping (a 12-byte frame each way on the
 * open session) per connection every `intervalMs`, spread over the interval, and an abort when one
 * goes unanswered for `timeoutMs`. It stands in for two things libp2p does by default:
 *
 *  - its connection monitor, which pings every connection every 10 s on a new stream each time
 *    (stream open, multistream-select, 32 bytes each way, close: about ten frames each way) and all
 *    connections in the same instant. At 1,000 connections that was most of an idle manager's frames
 *    and about 40% of its idle CPU (docs/scale.md, stop 26);
 *  - yamux's keep-alive, which pings every 30 s but only logs a ping that fails.
 *
 * Both ends run it, so each notices a peer that vanished without a FIN (power loss, a partition)
 * within about `intervalMs + timeoutMs`. A ping answers from the peer's event loop, so a peer process
 * that hangs is noticed as well.
 */
import type { Connection, Startable } from '@libp2p/interface';

export interface LivenessOptions {
  /** Between two pings of one connection. Default 10 s (libp2p's monitor's). */
  intervalMs?: number;
  /** A ping unanswered this long aborts the connection. Default 10 s. */
  timeoutMs?: number;
  /** How often the due connections are looked for. Default 1 s (or the interval, when shorter). */
  tickMs?: number;
  /** Source of the first ping's offset within the interval, in [0, 1). */
  random?: () => number;
}

interface Components {
  connectionManager: { getConnections(): Connection[] };
}

/** What the liveness monitor needs of a connection's muxer: yamux's ping. */
interface Pingable {
  ping(options?: { signal?: AbortSignal }): Promise<number>;
}

function muxerOf(conn: Connection): Pingable | null {
  const muxer = (conn as unknown as { muxer?: Partial<Pingable> }).muxer;
  return muxer && typeof muxer.ping === 'function' ? (muxer as Pingable) : null;
}

export class LivenessMonitor implements Startable {
  readonly #components: Components;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #tickMs: number;
  readonly #random: () => number;
  /** Next ping due, by connection; a connection not in it gets a random offset within the interval. */
  #due = new WeakMap<Connection, number>();
  #inFlight = new WeakSet<Connection>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #abort = new AbortController();
  /** Connections aborted for an unanswered ping (tests, metrics). */
  aborted = 0;

  constructor(components: Components, opts: LivenessOptions = {}) {
    this.#components = components;
    this.#intervalMs = opts.intervalMs ?? 10_000;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#tickMs = Math.min(opts.tickMs ?? 1_000, this.#intervalMs);
    this.#random = opts.random ?? Math.random;
  }

  readonly [Symbol.toStringTag] = 'shoal/liveness';

  start(): void {
    this.#abort = new AbortController();
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#abort.abort();
  }

  #tick(): void {
    const now = Date.now();
    for (const conn of this.#components.connectionManager.getConnections()) {
      if (conn.status !== 'open' || this.#inFlight.has(conn)) continue;
      const due = this.#due.get(conn);
      if (due === undefined) {
        this.#due.set(conn, now + this.#random() * this.#intervalMs);
        continue;
      }
      if (now < due) continue;
      const muxer = muxerOf(conn);
      if (!muxer) continue;
      this.#due.set(conn, now + this.#intervalMs);
      this.#ping(conn, muxer);
    }
  }

  #ping(conn: Connection, muxer: Pingable): void {
    this.#inFlight.add(conn);
    const signal = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#abort.signal]);
    muxer.ping({ signal }).then(
      () => this.#inFlight.delete(conn),
      (err: unknown) => {
        this.#inFlight.delete(conn);
        if (this.#abort.signal.aborted || conn.status !== 'open') return; // stopping, or closed meanwhile
        this.aborted++;
        conn.abort(new Error(`no answer to a ping within ${this.#timeoutMs} ms (${err instanceof Error ? err.message : String(err)})`));
      },
    );
  }
}

export function liveness(opts: LivenessOptions = {}): (components: Components) => LivenessMonitor {
  return (components) => new LivenessMonitor(components, opts);
}
