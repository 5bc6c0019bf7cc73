/**
 * Forwards queries the mesh does not answer to the host's own resolvers, one after another on timeout.
 *
 * UDP: one socket per address family; each forwarded query gets a fresh random ID (so clients' IDs
 * never collide and a blind spoof must guess it), and a reply is accepted only from the upstream it was
 * sent to, with the same ID and question. TCP (for clients that retried after a truncated answer): one
 * upstream connection per query. Both are bounded by `maxPending`; past it the client gets SERVFAIL.
 */
import type { udp } from 'bun';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { sendQuietly } from './udp-send.ts';
import { errorReply, MAX_MESSAGE_BYTES, RCODE, readId, sameQuestion, writeId } from './dns-wire.ts';

export interface Upstream {
  addr: string;
  port: number;
}

/** The `nameserver` lines of a resolv.conf (at most 3, as the C library reads). */
export function upstreamsFromResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // A link-local address with a zone (fe80::1%eth0) cannot be used from a socket bound to ::.
    if (m && !m[1]!.includes('%') && isIP(m[1]!) !== 0) out.push({ addr: m[1]!, port: 53 });
  }
  return out.slice(0, 3);
}

export function systemUpstreams(path = '/etc/resolv.conf'): Upstream[] {
  try {
    return upstreamsFromResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}

type Reply = (msg: Uint8Array) => void;

interface Pending {
  id: number;
  origId: number;
  query: Uint8Array;
  index: number;
  reply: Reply;
  timer: ReturnType<typeof setTimeout> | null;
}

export class Forwarder {
  private readonly pending = new Map<number, Pending>();
  private readonly sockets = new Map<4 | 6, Promise<udp.Socket<'buffer'>>>();
  private tcpInFlight = 0;
  private closed = false;
  /** Queries answered SERVFAIL because every upstream timed out or the pending table was full. */
  failed = 0;

  constructor(
    readonly upstreams: readonly Upstream[],
    private readonly timeoutMs: number,
    private readonly maxPending: number,
  ) {}

  get inFlight(): number {
    return this.pending.size + this.tcpInFlight;
  }

  forwardUdp(query: Uint8Array, reply: Reply): void {
    if (this.upstreams.length === 0 || this.inFlight >= this.maxPending || this.closed) return this.fail(query, reply);
    let id = 0;
    for (let i = 0; i < 64; i++) {
      id = (Math.random() * 0x10000) | 0;
      if (!this.pending.has(id)) break;
    }
    if (this.pending.has(id)) return this.fail(query, reply);
    const copy = Uint8Array.prototype.slice.call(query);
    const origId = readId(copy);
    writeId(copy, id);
    const p: Pending = { id, origId, query: copy, index: 0, reply, timer: null };
    this.pending.set(id, p);
    this.sendUdp(p);
  }

  forwardTcp(query: Uint8Array, reply: Reply): void {
    if (this.upstreams.length === 0 || this.inFlight >= this.maxPending || this.closed) return this.fail(query, reply);
    this.tcpInFlight++;
    const copy = Uint8Array.prototype.slice.call(query);
    const done = (msg: Uint8Array | null) => {
      this.tcpInFlight--;
      if (msg) reply(msg);
      else this.fail(copy, reply);
    };
    this.tryTcp(copy, 0, done);
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.pending.clear();
    for (const s of this.sockets.values()) s.then((u) => u.close(), () => {});
    this.sockets.clear();
  }

  private fail(query: Uint8Array, reply: Reply): void {
    this.failed++;
    const r = errorReply(query, RCODE.SERVFAIL);
    if (r) reply(r);
  }

  private socketFor(family: 4 | 6): Promise<udp.Socket<'buffer'>> {
    let s = this.sockets.get(family);
    if (!s) {
      s = Bun.udpSocket({
        hostname: family === 4 ? '0.0.0.0' : '::',
        port: 0,
        // An ICMP refusal from a dead upstream surfaces as an error here; its query times out and
        // moves to the next upstream.
        socket: { data: (_u, msg, port, addr) => this.fromUpstream(msg, port, addr), error: () => {} },
      });
      this.sockets.set(family, s);
    }
    return s;
  }

  private sendUdp(p: Pending): void {
    const up = this.upstreams[p.index]!;
    p.timer = setTimeout(() => this.nextUpstream(p), this.timeoutMs);
    this.socketFor(isIP(up.addr) === 6 ? 6 : 4).then(
      (s) => {
        if (this.pending.get(p.id) === p) sendQuietly(s, p.query, up.port, up.addr);
      },
      () => this.nextUpstream(p),
    );
  }

  private nextUpstream(p: Pending): void {
    if (this.pending.get(p.id) !== p) return;
    if (p.timer) clearTimeout(p.timer);
    p.index++;
    if (p.index < this.upstreams.length) return this.sendUdp(p);
    this.pending.delete(p.id);
    writeId(p.query, p.origId);
    this.fail(p.query, p.reply);
  }

  private fromUpstream(msg: Uint8Array, port: number, addr: string): void {
    const p = this.pending.get(readId(msg));
    if (p === undefined) return;
    const up = this.upstreams[p.index]!;
    if (up.port !== port || !sameAddr(up.addr, addr) || !sameQuestion(p.query, msg)) return;
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(p.id);
    const out = Uint8Array.prototype.slice.call(msg);
    writeId(out, p.origId);
    p.reply(out);
  }

  private tryTcp(query: Uint8Array, index: number, done: (msg: Uint8Array | null) => void): void {
    if (index >= this.upstreams.length || this.closed) return done(null);
    const up = this.upstreams[index]!;
    let got = new Uint8Array(0);
    let settled = false;
    const settle = (msg: Uint8Array | null, sock?: { end(): void }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock?.end();
      if (msg) done(msg);
      else this.tryTcp(query, index + 1, done);
    };
    const timer = setTimeout(() => settle(null, sockRef), this.timeoutMs);
    let sockRef: { end(): void } | undefined;
    Bun.connect({
      hostname: up.addr,
      port: up.port,
      socket: {
        open(s) {
          sockRef = s;
          const framed = new Uint8Array(2 + query.byteLength);
          framed[0] = query.byteLength >> 8;
          framed[1] = query.byteLength & 0xff;
          framed.set(query, 2);
          s.write(framed);
        },
        data(s, chunk) {
          if (got.byteLength + chunk.byteLength > MAX_MESSAGE_BYTES + 2) return settle(null, s);
          const joined = new Uint8Array(got.byteLength + chunk.byteLength);
          joined.set(got);
          joined.set(chunk, got.byteLength);
          got = joined;
          if (got.byteLength < 2) return;
          const len = (got[0]! << 8) | got[1]!;
          if (got.byteLength < 2 + len) return;
          const msg = got.slice(2, 2 + len);
          settle(readId(msg) === readId(query) && sameQuestion(query, msg) ? msg : null, s);
        },
        close() {
          settle(null);
        },
        connectError() {
          settle(null);
        },
      },
    }).catch(() => {});
  }
}

function sameAddr(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || b === `::ffff:${a}`;
}
