/**
 * The ingress routing mesh of one host: listens on every published port and relays each TCP
 * connection or UDP flow to a backend (a task of the service, here or on another host) from a table
 * that the caller replaces whenever tasks come and go. Not wired to the store here: the caller (the
 * worker, later) turns tasks into `setBackends` calls.
 *
 * Every resource is bounded: connections across all ports, bytes held per connection and direction,
 * UDP flows per port and datagrams queued per flow.
 */
import { BackendLoad, BackendTable, type Backend, validateBackends } from './backends.ts';
import { MeshConfigError } from './errors.ts';
import { NativeTcpRelayPort, nativeRelay } from './native-relay.ts';
import { type ConnectionBudget, newPortCounters, type PortCounters, TcpRelayPort } from './tcp-relay.ts';
import { UdpRelayPort } from './udp-relay.ts';

export type { Backend } from './backends.ts';
export type Protocol = 'tcp' | 'udp';

export interface IngressOptions {
  /** Address the published ports are bound on; default all IPv4 addresses (`0.0.0.0`). */
  bindAddress?: string;
  /** Live TCP connections across all ports; past it new ones are closed at once. Default 16384. */
  maxConnections?: number;
  /** Bytes held per connection and direction while the receiving side is slow. Default 1 MiB. */
  maxPendingBytes?: number;
  /** Time a backend has to accept before the next one is tried. Default 3000 ms. */
  connectTimeoutMs?: number;
  /** Backends tried for one connection before the client is closed. Default 3. */
  maxConnectAttempts?: number;
  /** How long a backend that refused stays last in line. Default 5000 ms. */
  failureCooldownMs?: number;
  /** A UDP flow with no datagram either way for this long is forgotten. Default 30 000 ms. */
  udpIdleTimeoutMs?: number;
  /** UDP flows per port. Default 4096. */
  maxUdpFlows?: number;
  /** Connections from these addresses are served by local backends only (another host's mesh sent them). */
  localOnlyFrom?: (addr: string) => boolean;
  /**
   * Which TCP data path: `native` (native-relay.ts: a thread in C, the fast one), `js` (tcp-relay.ts),
   * or `auto` (the default): native where it can be built here, else js.
   */
  tcpRelay?: 'auto' | 'native' | 'js';
}

const DEFAULTS: Required<IngressOptions> = {
  bindAddress: '0.0.0.0',
  maxConnections: 16384,
  maxPendingBytes: 1 << 20,
  connectTimeoutMs: 3000,
  maxConnectAttempts: 3,
  failureCooldownMs: 5000,
  udpIdleTimeoutMs: 30_000,
  maxUdpFlows: 4096,
  localOnlyFrom: () => false,
  tcpRelay: 'auto',
};

interface PublishedPort {
  table: BackendTable;
  relay: TcpRelayPort | NativeTcpRelayPort | UdpRelayPort | null;
}

export interface IngressStats {
  connections: number;
  refusedConnections: number;
  udpFlows: number;
  droppedDatagrams: number;
  ports: string[];
  /** The TCP data path in use, once a TCP port was published. */
  tcpRelay: 'native' | 'js' | null;
  /** What the log says of it: `native relay, <n> threads[, pinned]`, `js relay`, or `js relay (<why native could not run>)`. */
  tcpRelayLabel: string | null;
}

const keyOf = (port: number, protocol: Protocol) => `${port}/${protocol}`;

function checkPort(port: number, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) throw new MeshConfigError(`published port ${port} is out of range; want ${allowZero ? 0 : 1}-65535`);
}

function checkProtocol(protocol: string): asserts protocol is Protocol {
  if (protocol !== 'tcp' && protocol !== 'udp') throw new MeshConfigError(`protocol "${protocol}" is not supported; want tcp or udp`);
}

export class IngressProxy {
  readonly options: Readonly<Required<IngressOptions>>;
  private readonly load: BackendLoad;
  private readonly budget: ConnectionBudget;
  private readonly ports = new Map<string, PublishedPort>();
  /** By `port/protocol`, kept when a port is unpublished: totals only grow (metrics read them). */
  private readonly counters = new Map<string, PortCounters>();
  private tcpRelay: 'native' | 'js' | null = null;
  private tcpRelayLabel: string | null = null;

  constructor(options: IngressOptions = {}) {
    const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<IngressOptions>;
    for (const k of ['maxConnections', 'maxPendingBytes', 'connectTimeoutMs', 'maxConnectAttempts', 'udpIdleTimeoutMs', 'maxUdpFlows'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new MeshConfigError(`ingress option ${k} is ${o[k]}; want a positive integer`);
    if (!Number.isFinite(o.failureCooldownMs) || o.failureCooldownMs < 0) throw new MeshConfigError(`ingress option failureCooldownMs is ${o.failureCooldownMs}; want ≥ 0`);
    if (!['auto', 'native', 'js'].includes(o.tcpRelay)) throw new MeshConfigError(`ingress option tcpRelay is ${JSON.stringify(o.tcpRelay)}; want auto, native or js`);
    if (typeof o.bindAddress !== 'string' || o.bindAddress === '') throw new MeshConfigError('ingress option bindAddress is empty; want an address such as 0.0.0.0');
    this.options = o;
    this.load = new BackendLoad(o.failureCooldownMs);
    this.budget = { active: 0, max: o.maxConnections, refused: 0 };
  }

  /**
   * Starts listening on `port` (0: the system picks one) and returns the port bound. The port's table
   * may have been filled before, or is filled later with `setBackends`.
   */
  async publish(port: number, protocol: Protocol = 'tcp'): Promise<number> {
    checkPort(port, true);
    checkProtocol(protocol);
    const native = protocol === 'tcp' && this.options.tcpRelay !== 'js' ? await nativeRelay() : null;
    if (typeof native === 'string' && this.options.tcpRelay === 'native') throw new MeshConfigError(`the native TCP relay cannot run here: ${native}`);
    if (port !== 0 && this.ports.get(keyOf(port, protocol))?.relay) return port;
    const pending = port === 0 ? { table: new BackendTable(this.load), relay: null } : this.entry(port, protocol);
    let bound: number;
    if (protocol === 'tcp') {
      const engine = native !== null && typeof native !== 'string' ? native : null;
      const counters = newPortCounters();
      const relay = engine
        ? new NativeTcpRelayPort(engine, pending.table, this.load, this.budget, this.options, counters)
        : new TcpRelayPort(pending.table, this.load, this.budget, this.options, counters);
      bound = relay.listen(port);
      // Port 0 is bound only now; a port published again adds to what it had.
      const known = this.counters.get(keyOf(bound, protocol));
      if (known) relay.counters = known;
      else this.counters.set(keyOf(bound, protocol), counters);
      this.tcpRelay = engine ? 'native' : 'js';
      this.tcpRelayLabel = engine
        ? `native relay, ${engine.threads} thread${engine.threads === 1 ? '' : 's'}${engine.pinned === engine.threads ? ', pinned' : ''}`
        : `js relay${typeof native === 'string' ? ` (${native})` : ''}`;
      pending.relay = relay;
    } else {
      const relay = new UdpRelayPort(pending.table, this.load, {
        bindAddress: this.options.bindAddress,
        idleTimeoutMs: this.options.udpIdleTimeoutMs,
        maxFlows: this.options.maxUdpFlows,
        maxQueuedDatagrams: 64,
        localOnlyFrom: this.options.localOnlyFrom,
      });
      bound = await relay.listen(port);
      pending.relay = relay;
    }
    this.ports.set(keyOf(bound, protocol), pending);
    return bound;
  }

  /** Stops listening on `port`; live TCP connections through it are closed. */
  unpublish(port: number, protocol: Protocol = 'tcp'): void {
    const key = keyOf(port, protocol);
    this.ports.get(key)?.relay?.close();
    this.ports.delete(key);
  }

  /**
   * Replaces the backends of a published port. Live connections keep their backend; new ones use the
   * new table. Throws MeshConfigError on a malformed entry, leaving the old table in place.
   */
  setBackends(port: number, backends: readonly Backend[], protocol: Protocol = 'tcp'): void {
    checkPort(port, false);
    checkProtocol(protocol);
    const valid = validateBackends(backends, `backends of ${keyOf(port, protocol)}`);
    this.entry(port, protocol).table.replace(valid);
  }

  stats(): IngressStats {
    let udpFlows = 0;
    let droppedDatagrams = 0;
    for (const p of this.ports.values())
      if (p.relay instanceof UdpRelayPort) {
        udpFlows += p.relay.flowCount;
        droppedDatagrams += p.relay.dropped;
      }
    const ports = [...this.ports.entries()].filter(([, p]) => p.relay).map(([k]) => k);
    return { connections: this.budget.active, refusedConnections: this.budget.refused, udpFlows, droppedDatagrams, ports, tcpRelay: this.tcpRelay, tcpRelayLabel: this.tcpRelayLabel };
  }

  /** What each TCP port (`port/tcp`) has relayed since this proxy was made. */
  portCounters(): ReadonlyMap<string, Readonly<PortCounters>> {
    return this.counters;
  }

  close(): void {
    for (const p of this.ports.values()) p.relay?.close();
    this.ports.clear();
  }

  private entry(port: number, protocol: Protocol): PublishedPort {
    const key = keyOf(port, protocol);
    let p = this.ports.get(key);
    if (!p) this.ports.set(key, (p = { table: new BackendTable(this.load), relay: null }));
    return p;
  }
}
