/**
 * The embedded DNS server of one host: answers service names from a table the caller replaces
 * whenever services or tasks change (see dns-records.ts for the rules), NXDOMAIN for names that can
 * only be ours but are not in it (`tasks.<x>`, single labels), and forwards everything else to the
 * host's resolvers. UDP and TCP on the same address and port; TCP is there for answers that do not
 * fit a UDP datagram (the client sees TC and retries) and for clients that prefer it.
 *
 * Malformed input never throws out of a handler: a packet with a header gets FORMERR, one without is
 * dropped; a TCP stream that announces an impossible length is closed.
 */
import type { Socket, TCPSocketListener, udp } from 'bun';
import * as dnsPacket from 'dns-packet';
import { type Upstream, Forwarder, systemUpstreams } from './dns-forward.ts';
import { onlyOurs, type ServiceRecord, ServiceNames } from './dns-records.ts';
import { CLASSIC_UDP_BYTES, errorReply, HEADER_BYTES, isResponse, MAX_MESSAGE_BYTES, RCODE, replyFlags } from './dns-wire.ts';
import { MeshConfigError, PortUnavailableError } from './errors.ts';
import { sendQuietly } from './udp-send.ts';

export type { ServiceRecord } from './dns-records.ts';
export type { Upstream } from './dns-forward.ts';

export interface DnsOptions {
  /** Address to listen on. Default 127.0.0.11 (Docker's embedded resolver address). */
  address?: string;
  /** Port for both UDP and TCP; 0 lets the system pick (the UDP port is then reused for TCP). Default 53. */
  port?: number;
  /** Resolvers for other names. Default: the nameservers of /etc/resolv.conf. */
  upstreams?: Upstream[];
  /** TTL of the answers the mesh gives itself. Short, as tasks come and go. Default 5 s. */
  ttlSec?: number;
  forwardTimeoutMs?: number;
  /** Forwarded queries waiting for an upstream at once. Default 1024. */
  maxPendingForwards?: number;
  /** Live TCP connections. Default 256. */
  maxTcpConnections?: number;
  /** A TCP connection idle this long is closed. Default 10 s. */
  tcpIdleSec?: number;
  /**
   * Clients that cannot reach virtual IPs (a VM: no VIP rules in its host-side path) get a
   * service's task addresses for its name, as in dnsrr mode.
   */
  tasksFor?: (clientAddr: string) => boolean;
}

interface TcpConn {
  buf: Uint8Array;
  /** Reply bytes the socket has not taken yet. */
  unsent: Uint8Array | null;
}

/** Reply bytes held per TCP connection for a slow reader; past it the connection is closed. */
const MAX_UNSENT_BYTES = 256 * 1024;

export interface DnsStats {
  answered: number;
  forwarded: number;
  malformed: number;
  forwardFailures: number;
  tcpConnections: number;
}

export class EmbeddedDns {
  private readonly names = new ServiceNames();
  private views = new Map<string, ServiceNames>();
  private readonly forwarder: Forwarder;
  private udpSock: udp.Socket<'buffer'> | null = null;
  private tcp: TCPSocketListener<TcpConn> | null = null;
  private tcpConnections = 0;
  private readonly counts = { answered: 0, forwarded: 0, malformed: 0 };
  readonly address: string;
  private readonly wantedPort: number;
  private readonly ttlSec: number;
  private readonly maxTcp: number;
  private readonly tcpIdleSec: number;
  private readonly tasksFor?: (clientAddr: string) => boolean;

  constructor(opts: DnsOptions = {}) {
    this.address = opts.address ?? '127.0.0.11';
    this.wantedPort = opts.port ?? 53;
    this.ttlSec = opts.ttlSec ?? 5;
    this.maxTcp = opts.maxTcpConnections ?? 256;
    this.tcpIdleSec = opts.tcpIdleSec ?? 10;
    this.tasksFor = opts.tasksFor;
    if (!Number.isInteger(this.wantedPort) || this.wantedPort < 0 || this.wantedPort > 65535) throw new MeshConfigError(`DNS port ${this.wantedPort} is out of range; want 0-65535`);
    if (!Number.isInteger(this.ttlSec) || this.ttlSec < 0) throw new MeshConfigError(`DNS ttlSec ${this.ttlSec}; want an integer ≥ 0`);
    const upstreams = (opts.upstreams ?? systemUpstreams()).filter((u) => !(u.addr === this.address && u.port === this.wantedPort));
    for (const u of upstreams)
      if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) throw new MeshConfigError(`DNS upstream ${u.addr} has port ${u.port}; want 1-65535`);
    this.forwarder = new Forwarder(upstreams, opts.forwardTimeoutMs ?? 2000, opts.maxPendingForwards ?? 1024);
  }

  /** Replaces the service names; throws MeshConfigError on a bad record and keeps the old table. */
  setServices(records: readonly ServiceRecord[]): void {
    this.names.set(records);
  }

  /**
   * The names particular clients see instead of `setServices`' (by the address a query comes
   * from): a task on several networks asks the DNS of its first one, and must get the names of all
   * of its networks, as a Swarm container does; the other tasks there must not. Replaces the last set.
   */
  setClientServices(views: ReadonlyMap<string, readonly ServiceRecord[]>): void {
    const next = new Map<string, ServiceNames>();
    for (const [addr, records] of views) {
      const names = new ServiceNames();
      names.set(records);
      next.set(addr, names);
    }
    this.views = next;
  }

  private namesFor(from: string | undefined): ServiceNames {
    if (!from || this.views.size === 0) return this.names;
    return this.views.get(from.startsWith('::ffff:') ? from.slice(7) : from) ?? this.names;
  }

  get port(): number {
    return this.udpSock?.port ?? 0;
  }

  /**
   * Binds UDP and TCP on the same port. With port 0 the system picks the UDP port, and the TCP side may
   * find it taken (by any TCP socket on that number): then another UDP port is tried, a bounded number
   * of times.
   */
  async start(): Promise<number> {
    const tries = this.wantedPort === 0 ? 20 : 1;
    let last: unknown;
    for (let i = 0; i < tries; i++) {
      try {
        this.udpSock = await Bun.udpSocket({
          hostname: this.address,
          port: this.wantedPort,
          socket: {
            data: (s, msg, port, addr) => this.handle(msg, false, (out) => sendQuietly(s, out, port, addr), addr),
            // ECONNREFUSED from a client that went away (ICMP): nothing to do, the socket serves on.
            error: () => {},
          },
        });
        this.tcp = this.listenTcp(this.udpSock.port);
        return this.udpSock.port;
      } catch (e) {
        last = e;
        this.udpSock?.close();
        this.udpSock = null;
      }
    }
    this.stop();
    throw new PortUnavailableError(`DNS cannot listen on ${this.address}:${this.wantedPort}: ${last instanceof Error ? last.message : last}`, { cause: last });
  }

  stop(): void {
    this.udpSock?.close();
    this.udpSock = null;
    this.tcp?.stop(true);
    this.tcp = null;
    this.forwarder.close();
  }

  stats(): DnsStats {
    return { ...this.counts, forwardFailures: this.forwarder.failed, tcpConnections: this.tcpConnections };
  }

  /**
   * One query from a client; `send` gets the reply (at most one). Whatever a packet does to the
   * decoder or encoder, the server answers FORMERR (or drops it) and serves on.
   */
  private handle(msg: Uint8Array, overTcp: boolean, send: (out: Uint8Array) => void, from?: string): void {
    try {
      this.handleQuery(msg, overTcp, send, from);
    } catch (e) {
      this.counts.malformed++;
      const r = errorReply(msg, RCODE.FORMERR);
      if (r) send(r);
    }
  }

  private handleQuery(msg: Uint8Array, overTcp: boolean, send: (out: Uint8Array) => void, from?: string): void {
    if (msg.byteLength < HEADER_BYTES || isResponse(msg)) {
      this.counts.malformed++;
      return;
    }
    if (((msg[2]! >> 3) & 0xf) !== 0) {
      // Only standard queries (opcode 0): no NOTIFY, UPDATE or IQUERY here.
      const r = errorReply(msg, RCODE.NOTIMP);
      if (r) send(r);
      return;
    }
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength));
    } catch {
      this.counts.malformed++;
      const r = errorReply(msg, RCODE.FORMERR);
      if (r) send(r);
      return;
    }
    const question = q.questions?.[0];
    if ((q.questions?.length ?? 0) !== 1 || !question || typeof question.name !== 'string') {
      this.counts.malformed++;
      const r = errorReply(msg, RCODE.FORMERR);
      if (r) send(r);
      return;
    }
    const names = this.namesFor(from);
    const asTasks = !!from && this.tasksFor?.(from) === true && !/^tasks\./i.test(question.name) && names.has(`tasks.${question.name}`);
    const addrs = names.lookup(asTasks ? `tasks.${question.name}` : question.name, question.type);
    if (addrs === null && onlyOurs(question.name, question.type)) {
      // Not a name the host's resolvers could know: no question for them, no wait for their timeouts.
      this.counts.answered++;
      send(this.nxdomain(q, question));
      return;
    }
    if (addrs === null) {
      this.counts.forwarded++;
      if (overTcp) this.forwarder.forwardTcp(msg, send);
      else this.forwarder.forwardUdp(msg, send);
      return;
    }
    this.counts.answered++;
    send(this.localAnswer(q, question, addrs, overTcp));
  }

  /**
   * Authoritative NXDOMAIN with the question echoed. No SOA: a negative answer without one is not
   * cached (RFC 2308), and the name may be a service a moment later.
   */
  private nxdomain(q: dnsPacket.DecodedPacket, question: dnsPacket.Question): Buffer {
    return dnsPacket.encode({ type: 'response', id: q.id, flags: replyFlags(q.flags ?? 0, RCODE.NXDOMAIN, true), questions: [question], answers: [] });
  }

  private localAnswer(q: dnsPacket.DecodedPacket, question: dnsPacket.Question, addrs: string[], overTcp: boolean): Buffer {
    const answers: dnsPacket.Answer[] = addrs.map((a) => ({ name: question.name, type: a.includes(':') ? 'AAAA' : 'A', class: 'IN', ttl: this.ttlSec, data: a }));
    const opt = q.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    const limit = overTcp ? MAX_MESSAGE_BYTES : Math.min(4096, Math.max(CLASSIC_UDP_BYTES, opt?.udpPayloadSize ?? CLASSIC_UDP_BYTES));
    let flags = replyFlags(q.flags ?? 0, RCODE.NOERROR, true);
    let packet: dnsPacket.Packet = { type: 'response', id: q.id, flags, questions: [question], answers };
    let out = dnsPacket.encode(packet);
    if (out.byteLength > limit) {
      // Keep what fits and set TC: the client retries over TCP and gets the whole list.
      const perAnswer = (out.byteLength - HEADER_BYTES) / Math.max(1, answers.length);
      const keep = Math.max(0, Math.floor((limit - HEADER_BYTES - 300) / perAnswer));
      flags |= dnsPacket.TRUNCATED_RESPONSE;
      packet = { ...packet, flags, answers: answers.slice(0, keep) };
      out = dnsPacket.encode(packet);
      while (out.byteLength > limit && packet.answers!.length > 0) out = dnsPacket.encode((packet = { ...packet, answers: packet.answers!.slice(0, -1) }));
    }
    return out;
  }

  private listenTcp(port: number): TCPSocketListener<TcpConn> {
    const self = this;
    return Bun.listen<TcpConn>({
      hostname: this.address,
      port,
      data: undefined as unknown as TcpConn,
      socket: {
        open(s) {
          if (self.tcpConnections >= self.maxTcp) return void s.terminate();
          self.tcpConnections++;
          s.data = { buf: new Uint8Array(0), unsent: null };
          s.timeout(self.tcpIdleSec);
        },
        data(s, chunk) {
          self.tcpData(s, chunk);
        },
        drain(s) {
          const c = s.data;
          if (!c?.unsent) return;
          const n = s.write(c.unsent);
          c.unsent = n >= 0 && n < c.unsent.byteLength ? c.unsent.subarray(n) : null;
        },
        close(s) {
          if (s.data) self.tcpConnections--;
        },
        error() {},
      },
    });
  }

  /** Reassembles length-prefixed messages; several may arrive in one chunk, or one over several. */
  private tcpData(s: Socket<TcpConn>, chunk: Uint8Array): void {
    const c = s.data;
    if (!c) return;
    let buf = c.buf.byteLength === 0 ? chunk : concat(c.buf, chunk);
    s.timeout(this.tcpIdleSec);
    while (buf.byteLength >= 2) {
      const len = (buf[0]! << 8) | buf[1]!;
      if (len < HEADER_BYTES) {
        this.counts.malformed++;
        return void s.end();
      }
      if (buf.byteLength < 2 + len) break;
      const msg = buf.slice(2, 2 + len);
      buf = buf.subarray(2 + len);
      this.handle(msg, true, (out) => {
        if (s.readyState !== 1) return;
        const framed = new Uint8Array(2 + out.byteLength);
        framed[0] = out.byteLength >> 8;
        framed[1] = out.byteLength & 0xff;
        framed.set(out, 2);
        this.tcpWrite(s, framed);
      }, s.remoteAddress);
    }
    // At most one partial message (< 64 KiB) is ever kept.
    c.buf = buf.byteLength === 0 ? new Uint8Array(0) : Uint8Array.prototype.slice.call(buf);
  }

  private tcpWrite(s: Socket<TcpConn>, framed: Uint8Array): void {
    const c = s.data;
    if (c.unsent !== null) {
      if (c.unsent.byteLength + framed.byteLength > MAX_UNSENT_BYTES) return void s.terminate();
      c.unsent = concat(c.unsent, framed);
      return;
    }
    const n = s.write(framed);
    if (n >= 0 && n < framed.byteLength) c.unsent = framed.slice(n);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
