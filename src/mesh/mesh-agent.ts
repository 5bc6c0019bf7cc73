/**
 * The host side of the ingress routing mesh: turns the endpoint table the dispatcher sends (every
 * published port of the cluster and its running tasks) into this host's `IngressProxy` listeners and
 * backend tables. Ports are published when they appear and unpublished when they go; `local` is
 * whether a task runs on this node (the proxy prefers those).
 *
 * Host-mode ports (`mode: host`) are published only on a host that runs one of their tasks, and go
 * only to the local tasks.
 *
 * A port that cannot be bound (in use by something else on this host) is logged and tried again
 * with the next table, or after `retryMs` when no table comes.
 */
import type { EndpointPort } from '../manager/dispatcher/protocol.ts';
import { type Backend, MAX_BACKENDS_PER_PORT } from './backends.ts';
import { errorMessage } from '../lib/errors.ts';
import type { IngressProxy, Protocol } from './ingress.ts';

export interface MeshAgentOptions {
  nodeId: string;
  proxy: IngressProxy;
  /** Wait before binding a port that failed again. Default 5000 ms. */
  retryMs?: number;
  log?: (msg: string) => void;
}

interface Wanted { port: number; protocol: Protocol; backends: Backend[] }

export class MeshAgent {
  readonly #o: MeshAgentOptions;
  /** Every port this agent gave the proxy a table for, and whether it is listening. */
  readonly #ports = new Map<string, { port: number; protocol: Protocol; listening: boolean }>();
  #latest: EndpointPort[] | null = null;
  #last: EndpointPort[] = [];
  #chain: Promise<void> = Promise.resolve();
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #peers = new Set<string>();

  constructor(opts: MeshAgentOptions) {
    this.#o = opts;
  }

  /** Apply a new table (coalesced: only the newest one waiting is applied). */
  apply(ports: EndpointPort[]): void {
    if (this.#closed) return;
    this.#latest = ports;
    this.#chain = this.#chain.then(() => this.#sync()).catch((err) => this.#o.log?.(`mesh: ${errorMessage(err)}`));
  }

  /** Resolves when every table given so far is applied. */
  get settled(): Promise<void> { return this.#chain; }

  /** The ports listening now, as `port/protocol`. */
  listening(): string[] {
    return [...this.#ports.entries()].filter(([, p]) => p.listening).map(([k]) => k).sort();
  }

  /**
   * What the mesh of this host relayed, by service (a port's totals go to the service that holds it
   * in the newest table; a port no service holds any more, to ""). The native relay adds a
   * connection's bytes when it closes, the JavaScript relay as they pass.
   */
  traffic(): { services: Map<string, { connections: number; bytesIn: number; bytesOut: number }>; active: number } {
    const owner = new Map<string, string>();
    for (const p of this.#last) owner.set(`${p.port}/${p.protocol}`, p.service);
    const services = new Map<string, { connections: number; bytesIn: number; bytesOut: number }>();
    for (const [key, c] of this.#o.proxy.portCounters()) {
      const name = owner.get(key) ?? '';
      const t = services.get(name);
      if (t) {
        t.connections += c.connections;
        t.bytesIn += c.bytesIn;
        t.bytesOut += c.bytesOut;
      } else services.set(name, { connections: c.connections, bytesIn: c.bytesIn, bytesOut: c.bytesOut });
    }
    return { services, active: this.#o.proxy.stats().connections };
  }

  /**
   * A connection from this address came from another host's mesh, for one of our overlay tasks:
   * serve it locally, never send it on (that host chose us because the task is here).
   */
  isPeer(addr: string): boolean {
    return this.#peers.has(addr.startsWith('::ffff:') ? addr.slice(7) : addr);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    for (const p of this.#ports.values()) this.#o.proxy.unpublish(p.port, p.protocol);
    this.#ports.clear();
  }

  async #sync(): Promise<void> {
    const ports = this.#latest;
    if (!ports || this.#closed) return;
    this.#latest = null;
    this.#last = ports;
    const wanted = new Map<string, Wanted>();
    const peers = new Set<string>();
    for (const p of ports) {
      const all = p.backends.map((b) => {
        const local = b.node === this.#o.nodeId;
        if (!local && b.inner) peers.add(b.addr);
        const at = local && b.inner ? b.inner : b;
        return { addr: at.addr, port: at.port, local, healthy: b.healthy };
      });
      const use = p.mode === 'host' ? all.filter((b) => b.local) : all;
      if (p.mode === 'host' && use.length === 0) continue;
      const key = `${p.port}/${p.protocol}`;
      const w = wanted.get(key);
      if (w) w.backends.push(...use); // the allocator never gives one port twice; if it did, both serve
      else wanted.set(key, { port: p.port, protocol: p.protocol, backends: use });
    }
    this.#peers = peers;
    for (const [key, p] of [...this.#ports]) {
      if (wanted.has(key)) continue;
      this.#o.proxy.unpublish(p.port, p.protocol);
      this.#ports.delete(key);
      if (p.listening) this.#o.log?.(`mesh: stopped listening on ${this.#o.proxy.options.bindAddress}:${key}`);
    }
    let failed = false;
    for (const [key, w] of wanted) {
      try {
        this.#o.proxy.setBackends(w.port, w.backends.slice(0, MAX_BACKENDS_PER_PORT), w.protocol);
      } catch (err) {
        this.#o.log?.(`mesh: backends of ${key} refused: ${errorMessage(err)}`);
        continue;
      }
      const known = this.#ports.get(key);
      if (known?.listening) continue;
      this.#ports.set(key, { port: w.port, protocol: w.protocol, listening: false });
      try {
        await this.#o.proxy.publish(w.port, w.protocol);
        if (this.#closed) return;
        this.#ports.set(key, { port: w.port, protocol: w.protocol, listening: true });
        const relay = w.protocol === 'tcp' ? ` (${this.#o.proxy.stats().tcpRelayLabel})` : '';
        this.#o.log?.(`mesh: listening on ${this.#o.proxy.options.bindAddress}:${key}${relay}`);
      } catch (err) {
        failed = true;
        // A process task shares the host's network: with published = target port, it holds the port itself.
        const hint = w.backends.some((b) => b.local && b.port === w.port)
          ? ` (a task on this host listens on port ${w.port} itself: publish the service on another port than its target)`
          : '';
        this.#o.log?.(`mesh: cannot listen on ${this.#o.proxy.options.bindAddress}:${key}: ${errorMessage(err)}${hint}; trying again`);
      }
    }
    clearTimeout(this.#retry);
    if (failed && !this.#closed) {
      this.#retry = setTimeout(() => { if (!this.#latest) this.apply(this.#last); }, this.#o.retryMs ?? 5000);
      (this.#retry as { unref?: () => void }).unref?.();
    }
  }
}
