/**
 * One published UDP port: each client (address, port) is a flow with its own connected socket to one
 * backend, so replies come back to the right client and a flow sticks to its backend. Flows end after
 * `idleTimeoutMs` without a datagram either way. The number of flows is bounded: when the table is
 * full, datagrams that would open a new flow are dropped (and counted), as conntrack does; live flows
 * are never evicted for newcomers. A flow whose backend errors (ICMP refused) is dropped, so the next
 * datagram from that client picks another backend.
 */
import type { udp } from 'bun';
import { type BackendLoad, type BackendTable, type TableEntry } from './backends.ts';
import { PortUnavailableError } from './errors.ts';
import { sendConnectedQuietly, sendQuietly } from './udp-send.ts';

export interface UdpRelayOptions {
  bindAddress: string;
  idleTimeoutMs: number;
  maxFlows: number;
  /** Datagrams held per flow while its upstream socket is being opened. */
  maxQueuedDatagrams: number;
  /** Clients at these addresses get local backends only. */
  localOnlyFrom?: (addr: string) => boolean;
}

interface Flow {
  key: string;
  clientAddr: string;
  clientPort: number;
  backend: TableEntry;
  upstream: udp.ConnectedSocket<'buffer'> | null;
  queue: Uint8Array[] | null;
  lastSeenMs: number;
  closed: boolean;
}

export class UdpRelayPort {
  private socket: udp.Socket<'buffer'> | null = null;
  private readonly flows = new Map<string, Flow>();
  private sweeper: ReturnType<typeof setInterval> | null = null;
  /** Datagrams dropped: no backend, flow table full, or queue full while connecting. */
  dropped = 0;

  constructor(
    private readonly table: BackendTable,
    private readonly load: BackendLoad,
    private readonly opts: UdpRelayOptions,
  ) {}

  get port(): number {
    return this.socket?.port ?? 0;
  }

  get flowCount(): number {
    return this.flows.size;
  }

  async listen(port: number): Promise<number> {
    try {
      this.socket = await Bun.udpSocket({
        hostname: this.opts.bindAddress,
        port,
        // An ICMP refusal from a client that went away surfaces as an error: the socket serves on.
        socket: { data: (_s, data, cport, caddr) => this.fromClient(data, cport, caddr), error: () => {} },
      });
    } catch (e) {
      throw new PortUnavailableError(`cannot listen on ${this.opts.bindAddress}:${port}/udp: ${e instanceof Error ? e.message : e}`, { cause: e });
    }
    const everyMs = Math.max(10, Math.min(1000, Math.floor(this.opts.idleTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), everyMs);
    this.sweeper.unref?.();
    return this.socket.port;
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const f of [...this.flows.values()]) this.endFlow(f);
    this.socket?.close();
    this.socket = null;
  }

  /** Ends flows idle for longer than the timeout; called on a timer, and before refusing a new flow. */
  sweep(nowMs = performance.now()): void {
    for (const f of this.flows.values()) if (nowMs - f.lastSeenMs > this.opts.idleTimeoutMs) this.endFlow(f);
  }

  private fromClient(data: Uint8Array, cport: number, caddr: string): void {
    const key = `${caddr}|${cport}`;
    let f = this.flows.get(key);
    if (f === undefined) {
      if (this.flows.size >= this.opts.maxFlows) this.sweep();
      if (this.flows.size >= this.opts.maxFlows) return void this.dropped++;
      const created = this.openFlow(key, caddr, cport);
      if (created === null) return void this.dropped++;
      f = created;
    }
    f.lastSeenMs = performance.now();
    if (f.upstream !== null) {
      // A refused send means the backend's port is closed: forget the flow so the next datagram from
      // this client picks another backend.
      if (!sendConnectedQuietly(f.upstream, data)) {
        this.load.markFailed(f.backend.key);
        this.endFlow(f);
      }
      return;
    }
    const q = (f.queue ??= []);
    if (q.length >= this.opts.maxQueuedDatagrams) return void this.dropped++;
    q.push(Uint8Array.prototype.slice.call(data));
  }

  private openFlow(key: string, clientAddr: string, clientPort: number): Flow | null {
    const backend = this.table.pick(undefined, this.opts.localOnlyFrom?.(clientAddr) ?? false);
    if (backend === null) return null;
    const f: Flow = { key, clientAddr, clientPort, backend, upstream: null, queue: null, lastSeenMs: performance.now(), closed: false };
    this.flows.set(key, f);
    this.load.acquire(backend.key);
    Bun.udpSocket({
      connect: { hostname: backend.addr, port: backend.port },
      socket: {
        data: (_u, reply) => {
          if (f.closed) return;
          f.lastSeenMs = performance.now();
          if (this.socket) sendQuietly(this.socket, reply, f.clientPort, f.clientAddr);
        },
        error: () => {
          this.load.markFailed(backend.key);
          this.endFlow(f);
        },
      },
    }).then(
      (u) => {
        if (f.closed) return void u.close();
        f.upstream = u;
        const q = f.queue;
        f.queue = null;
        if (q) for (const d of q) sendConnectedQuietly(u, d);
      },
      () => {
        this.load.markFailed(backend.key);
        this.endFlow(f);
      },
    );
    return f;
  }

  private endFlow(f: Flow): void {
    if (f.closed) return;
    f.closed = true;
    this.flows.delete(f.key);
    this.load.release(f.backend.key);
    f.upstream?.close();
    f.upstream = null;
    f.queue = null;
  }
}
