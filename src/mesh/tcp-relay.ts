/**
 * One published TCP port: accepts connections and relays each to a backend from its table.
 *
 * The client socket is paused from accept until a backend has accepted, so the client's bytes wait in
 * the kernel and a refused or silent backend can be replaced by another before any byte is relayed:
 * the client never notices. After that, bytes go straight through (`write` is a syscall, no queue);
 * when a side takes only part of a chunk, the rest is held and the sending side is paused until the
 * `drain`, so at most one chunk per direction is ever held (bounded by `maxPendingBytes` too).
 * Half-closes are passed on: a FIN from one side becomes a FIN to the other once its bytes are out
 * (`shutdown()`, not `end()`: in Bun `end()` also stops reading, which would lose the reply).
 */
import type { Socket, TCPSocketListener } from 'bun';
import { type BackendLoad, type BackendTable, type TableEntry } from './backends.ts';
import { PortUnavailableError } from './errors.ts';

export interface TcpRelayOptions {
  bindAddress: string;
  connectTimeoutMs: number;
  maxConnectAttempts: number;
  maxPendingBytes: number;
  /** Clients at these addresses get local backends only. */
  localOnlyFrom: (addr: string) => boolean;
}

/** Shared by every port of one proxy, so the connection bound holds across ports. */
export interface ConnectionBudget {
  active: number;
  readonly max: number;
  refused: number;
}

/**
 * What one published port has relayed, kept by the proxy across relays of that port (plain numbers:
 * the hot path adds, a metrics scrape reads). This relay counts bytes as they pass; the native one
 * counts in its threads and tells this side when a connection closes.
 */
export interface PortCounters {
  connections: number;
  bytesIn: number;
  bytesOut: number;
}

export const newPortCounters = (): PortCounters => ({ connections: 0, bytesIn: 0, bytesOut: 0 });

class Relay {
  upstream: Socket<Leg> | null = null;
  backend: TableEntry | null = null;
  attempt = 0;
  tried: Set<string> | null = null;
  timer: ReturnType<typeof setTimeout> | null = null;
  /** Bytes read from the client that the upstream has not taken yet (and the reverse). */
  toUpstream: Uint8Array[] | null = null;
  toUpstreamBytes = 0;
  toClient: Uint8Array | null = null;
  clientEnded = false;
  upstreamEnded = false;
  closed = false;
  /** Only this host's backends (the client is another host's mesh). */
  localOnly = false;
  constructor(readonly client: Socket<Relay>) {}
}

/** The data of an upstream socket: which relay, and which connect attempt it came from. */
interface Leg {
  relay: Relay;
  attempt: number;
}

export class TcpRelayPort {
  private listener: TCPSocketListener<Relay> | null = null;

  constructor(
    private readonly table: BackendTable,
    private readonly load: BackendLoad,
    private readonly budget: ConnectionBudget,
    private readonly opts: TcpRelayOptions,
    public counters: PortCounters = newPortCounters(),
  ) {}

  get port(): number {
    return this.listener?.port ?? 0;
  }

  listen(port: number): number {
    const self = this;
    try {
      this.listener = Bun.listen<Relay>({
        hostname: this.opts.bindAddress,
        port,
        allowHalfOpen: true,
        data: undefined as unknown as Relay,
        socket: {
          open(s) {
            if (self.budget.active >= self.budget.max) {
              self.budget.refused++;
              s.terminate();
              return;
            }
            self.budget.active++;
            self.counters.connections++;
            const r = new Relay(s);
            r.localOnly = self.opts.localOnlyFrom(s.remoteAddress);
            s.data = r;
            s.pause();
            s.setNoDelay(true);
            self.connect(r);
          },
          data(s, chunk) {
            const r = s.data;
            if (r === undefined) return; // refused at open
            self.counters.bytesIn += chunk.byteLength;
            if (r.upstream === null || r.toUpstream !== null) return self.holdForUpstream(r, chunk);
            const n = r.upstream.write(chunk);
            if (n === chunk.byteLength) return;
            if (n < 0) return self.finish(r);
            self.holdForUpstream(r, chunk.subarray(n));
          },
          drain(s) {
            const r = s.data;
            if (r && self.flushToClient(r)) r.upstream?.resume();
          },
          end(s) {
            const r = s.data;
            if (!r) return; // refused at open
            r.clientEnded = true;
            if (r.upstreamEnded) return self.finish(r);
            if (r.upstream && r.toUpstream === null) r.upstream.shutdown();
          },
          close(s) {
            if (s.data) self.finish(s.data);
          },
          error() {},
        },
      });
    } catch (e) {
      throw new PortUnavailableError(`cannot listen on ${this.opts.bindAddress}:${port}/tcp: ${e instanceof Error ? e.message : e}`, { cause: e });
    }
    return this.listener.port;
  }

  close(): void {
    this.listener?.stop(true);
    this.listener = null;
  }

  private connect(r: Relay): void {
    const b = this.table.pick(r.tried ?? undefined, r.localOnly);
    if (b === null || r.attempt >= this.opts.maxConnectAttempts) {
      r.client.end();
      return this.finish(r);
    }
    const attempt = ++r.attempt;
    r.backend = b;
    r.timer = setTimeout(() => this.attemptFailed(r, attempt), this.opts.connectTimeoutMs);
    const self = this;
    Bun.connect<Leg>({
      hostname: b.addr,
      port: b.port,
      allowHalfOpen: true,
      data: { relay: r, attempt },
      socket: {
        open(u) {
          const leg = u.data;
          const rr = leg.relay;
          if (rr.closed || leg.attempt !== rr.attempt) return void u.terminate();
          if (rr.timer) clearTimeout(rr.timer);
          rr.timer = null;
          rr.upstream = u;
          u.setNoDelay(true);
          self.load.acquire(b.key);
          self.load.markAlive(b.key);
          if (self.flushToUpstream(rr)) rr.client.resume();
        },
        connectError(u) {
          self.attemptFailed(u.data.relay, u.data.attempt);
        },
        data(u, chunk) {
          const rr = u.data.relay;
          self.counters.bytesOut += chunk.byteLength;
          if (rr.toClient !== null) return self.holdForClient(rr, chunk);
          const n = rr.client.write(chunk);
          if (n === chunk.byteLength) return;
          if (n < 0) return self.finish(rr);
          self.holdForClient(rr, chunk.subarray(n));
        },
        drain(u) {
          const rr = u.data.relay;
          if (rr.upstream === u && self.flushToUpstream(rr)) rr.client.resume();
        },
        end(u) {
          const rr = u.data.relay;
          if (rr.upstream !== u) return;
          rr.upstreamEnded = true;
          if (rr.clientEnded) return self.finish(rr);
          if (rr.toClient === null) rr.client.shutdown();
        },
        close(u) {
          const rr = u.data.relay;
          if (rr.upstream === u) self.finish(rr);
        },
        error() {},
      },
    }).catch(() => {
      // connectError above has handled it; this only keeps the rejection from being unhandled.
    });
  }

  private attemptFailed(r: Relay, attempt: number): void {
    if (r.closed || attempt !== r.attempt || r.upstream !== null) return;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    const key = r.backend!.key;
    this.load.markFailed(key);
    (r.tried ??= new Set()).add(key);
    this.connect(r);
  }

  private holdForUpstream(r: Relay, chunk: Uint8Array): void {
    // Bun may reuse the buffer it handed to `data`, so what is kept is copied.
    (r.toUpstream ??= []).push(Uint8Array.prototype.slice.call(chunk));
    r.toUpstreamBytes += chunk.byteLength;
    r.client.pause();
    if (r.toUpstreamBytes > this.opts.maxPendingBytes) {
      r.client.terminate();
      this.finish(r);
    }
  }

  private holdForClient(r: Relay, chunk: Uint8Array): void {
    if (r.toClient !== null) {
      // Only reachable if a `data` event slipped in after pause(): keep it, but never past the bound.
      if (r.toClient.byteLength + chunk.byteLength > this.opts.maxPendingBytes) {
        r.upstream?.terminate();
        return this.finish(r);
      }
      const joined = new Uint8Array(r.toClient.byteLength + chunk.byteLength);
      joined.set(r.toClient);
      joined.set(chunk, r.toClient.byteLength);
      r.toClient = joined;
    } else {
      r.toClient = Uint8Array.prototype.slice.call(chunk);
    }
    r.upstream?.pause();
  }

  /** Writes what waits for the upstream; true when nothing is left. */
  private flushToUpstream(r: Relay): boolean {
    const u = r.upstream;
    if (u === null) return false;
    const q = r.toUpstream;
    if (q !== null) {
      while (q.length > 0) {
        const head = q[0]!;
        const n = u.write(head);
        if (n < 0) {
          this.finish(r);
          return false;
        }
        r.toUpstreamBytes -= Math.max(0, n);
        if (n < head.byteLength) {
          q[0] = head.subarray(n);
          return false;
        }
        q.shift();
      }
      r.toUpstream = null;
    }
    if (r.clientEnded) u.shutdown();
    return true;
  }

  private flushToClient(r: Relay): boolean {
    const head = r.toClient;
    if (head === null) return true;
    const n = r.client.write(head);
    if (n < 0) {
      this.finish(r);
      return false;
    }
    if (n < head.byteLength) {
      r.toClient = head.subarray(n);
      return false;
    }
    r.toClient = null;
    if (r.upstreamEnded) r.client.shutdown();
    return true;
  }

  private finish(r: Relay): void {
    if (r.closed) return;
    r.closed = true;
    this.budget.active--;
    if (r.timer) clearTimeout(r.timer);
    if (r.upstream !== null && r.backend !== null) this.load.release(r.backend.key);
    r.client.end();
    r.upstream?.end();
  }
}
