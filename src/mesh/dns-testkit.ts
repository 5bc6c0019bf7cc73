/**
 * Helpers for the DNS tests: a fake upstream resolver on loopback (never a real outside address), a
 * raw query client over UDP or TCP built on dns-packet, and `dig` when Debian's dnsutils is installed.
 */
import type { TCPSocketListener, udp } from 'bun';
import * as dnsPacket from 'dns-packet';
import { waitFor } from './testkit.ts';
export { seededRandom as rng } from '../lib/rng.ts';

export interface FakeUpstream {
  port: number;
  queries: number;
  /** When true, it reads queries and never answers (a dead resolver). */
  silent: boolean;
  stop(): void;
}

/** Answers `<anything>.test` A queries with 192.0.2.1 (TEST-NET-1) and everything else NXDOMAIN. */
export async function fakeUpstream(host = '127.0.0.1', silent = false): Promise<FakeUpstream> {
  const answer = (msg: Uint8Array): Buffer | null => {
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(Buffer.from(msg));
    } catch {
      return null;
    }
    const question = q.questions?.[0];
    if (!question) return null;
    const known = question.name.toLowerCase().endsWith('.test') && question.type === 'A';
    return dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3),
      questions: [question],
      answers: known ? [{ name: question.name, type: 'A', class: 'IN', ttl: 60, data: '192.0.2.1' }] : [],
    });
  };
  const u: FakeUpstream = { port: 0, queries: 0, silent, stop: () => {} };
  // UDP and TCP on one port number: retry when the TCP side of the picked number is taken.
  for (let i = 0; ; i++) {
    const sock: udp.Socket<'buffer'> = await Bun.udpSocket({
      hostname: host,
      port: 0,
      socket: {
        error() {},
        data(s, msg, port, addr) {
          u.queries++;
          const out = u.silent ? null : answer(msg);
          if (out) s.send(out, port, addr);
        },
      },
    });
    let tcp: TCPSocketListener<undefined>;
    try {
      tcp = Bun.listen({
        hostname: host,
        port: sock.port,
        socket: {
          data(s, chunk) {
            u.queries++;
            if (u.silent) return;
            const out = answer(chunk.subarray(2, 2 + ((chunk[0]! << 8) | chunk[1]!)));
            if (!out) return;
            const framed = Buffer.alloc(2 + out.byteLength);
            framed.writeUInt16BE(out.byteLength);
            out.copy(framed, 2);
            s.write(framed);
          },
        },
      });
    } catch (e) {
      sock.close();
      if (i < 20) continue;
      throw e;
    }
    u.port = sock.port;
    u.stop = () => {
      sock.close();
      tcp.stop(true);
    };
    return u;
  }
}

export function query(name: string, type: dnsPacket.RecordType = 'A', opts: { id?: number; edns?: number } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals: opts.edns ? [{ name: '.', type: 'OPT', udpPayloadSize: opts.edns, flags: 0 } as dnsPacket.Answer] : [],
  });
}

/** Sends one raw datagram and returns the first reply (or null when none came within `limitMs`). */
export async function udpExchange(port: number, msg: Uint8Array, host = '127.0.0.1', limitMs = 3000): Promise<Buffer | null> {
  let reply: Buffer | null = null;
  const s = await Bun.udpSocket({ hostname: host, port: 0, socket: { data: (_s, d) => void (reply ??= Buffer.from(d)), error: () => {} } });
  try {
    s.send(msg, port, host);
    await waitFor(() => reply !== null, 'a DNS reply', limitMs).catch(() => {});
    return reply;
  } finally {
    s.close();
  }
}

/** Sends length-prefixed messages on one TCP connection and returns the replies, in order. */
export async function tcpExchange(port: number, msgs: Uint8Array[], host = '127.0.0.1', expected = msgs.length): Promise<Buffer[]> {
  let buf = Buffer.alloc(0);
  const replies: Buffer[] = [];
  let closed = false;
  const s = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data(_s, d) {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
      },
      close() {
        closed = true;
      },
    },
  });
  s.write(Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.byteLength >> 8, m.byteLength & 0xff]), m]))));
  await waitFor(() => replies.length >= expected || closed, `${expected} DNS replies over TCP`);
  s.end();
  return replies;
}

export const digPath = Bun.which('dig');

/** Runs dig against the server and returns its `+short` lines. */
export async function dig(port: number, args: string[], host = '127.0.0.1'): Promise<string[]> {
  const p = Bun.spawn([digPath!, `@${host}`, '-p', String(port), '+short', '+tries=1', '+time=3', ...args], { stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`dig ${args.join(' ')} exited ${code}: ${err}${out}`);
  return out.split('\n').filter((l) => l.length > 0);
}


/** Runs dig against the server and returns the reply's status and header flags (`qr`, `aa`…). */
export async function digHeader(port: number, args: string[], host = '127.0.0.1'): Promise<{ status: string; flags: string[] }> {
  const p = Bun.spawn([digPath!, `@${host}`, '-p', String(port), '+noall', '+comments', '+tries=1', '+time=3', ...args], { stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`dig ${args.join(' ')} exited ${code}: ${err}${out}`);
  const status = /status: (\w+)/.exec(out)?.[1];
  const flags = /;; flags: ([^;]*);/.exec(out)?.[1];
  if (!status || flags === undefined) throw new Error(`dig ${args.join(' ')}: no header in ${out}`);
  return { status, flags: flags.trim().split(/\s+/) };
}
