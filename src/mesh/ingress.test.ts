import { afterEach, describe, expect, test } from 'bun:test';
import { readdirSync } from 'node:fs';
import { PortUnavailableError, MeshConfigError } from './errors.ts';
import { IngressProxy } from './ingress.ts';
import { connectClient, greetingBackend, refusedPort, silentBackend, type TestBackend, udpClient, udpEchoBackend, waitFor, whoAnswers } from './testkit.ts';

const HOST = '127.0.0.1';
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function proxyOf(opts: ConstructorParameters<typeof IngressProxy>[0] = {}): IngressProxy {
  const p = new IngressProxy({ bindAddress: HOST, ...opts });
  cleanups.push(() => p.close());
  return p;
}

function backends(...names: string[]): TestBackend[] {
  return names.map((n) => {
    const b = greetingBackend(n, HOST);
    cleanups.push(() => b.stop());
    return b;
  });
}

const entry = (b: { port: number }, local = false, healthy = true) => ({ addr: HOST, port: b.port, local, healthy });

function tally(names: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const n of names) t[n] = (t[n] ?? 0) + 1;
  return t;
}

// Every TCP case runs against both data paths: the native relay thread and the all-JavaScript relay.
for (const engine of ['native', 'js'] as const)
describe(`ingress TCP (${engine} relay)`, () => {
  const proxy = (opts: ConstructorParameters<typeof IngressProxy>[0] = {}) => proxyOf({ tcpRelay: engine, ...opts });
  /** A proxy with one port published on a free port, relaying to these backends. */
  const serving = async (to: (TestBackend | { addr: string; port: number; local: boolean; healthy: boolean })[], opts: ConstructorParameters<typeof IngressProxy>[0] = {}) => {
    const p = proxy(opts);
    const port = await p.publish(0);
    p.setBackends(port, to.map((b) => ('addr' in b ? b : entry(b))));
    return { p, port };
  };

  test('uses the data path asked for', async () => {
    const p = proxy();
    await p.publish(0);
    expect(p.stats().tcpRelay).toBe(engine);
  });

  test('spreads connections over the backends', async () => {
    const bs = backends('a', 'b', 'c');
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, bs.map((b) => entry(b)));
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) seen.push(await whoAnswers(port));
    const t = tally(seen);
    expect(Object.keys(t).sort()).toEqual(['a', 'b', 'c']);
    for (const n of ['a', 'b', 'c']) expect(t[n]!).toBeGreaterThanOrEqual(5);
  });

  test('concurrent connections go to the least loaded backend', async () => {
    const bs = backends('a', 'b');
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, bs.map((b) => entry(b)));
    const held = [];
    for (let i = 0; i < 10; i++) {
      const c = await connectClient(port);
      held.push(c);
      await waitFor(() => c.received().includes('\n'), 'greeting');
    }
    expect(bs.map((b) => b.open)).toEqual([5, 5]);
    for (const c of held) c.socket.end();
    await waitFor(() => p.stats().connections === 0, 'all relays closed');
  });

  test('a refused backend is skipped without the client noticing', async () => {
    const [live] = backends('live');
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, [{ addr: HOST, port: refusedPort(HOST), local: true, healthy: true }, entry(live!), { addr: HOST, port: refusedPort(HOST), local: false, healthy: true }]);
    for (let i = 0; i < 12; i++) expect(await whoAnswers(port)).toBe('live');
  });

  test('bytes the client sent before the retry reach the backend that finally answers', async () => {
    const [live] = backends('live');
    const p = proxy({ failureCooldownMs: 0 });
    const port = await p.publish(0);
    p.setBackends(port, [{ addr: HOST, port: refusedPort(HOST), local: true, healthy: true }, entry(live!)]);
    const c = await connectClient(port);
    c.socket.write('hello through a retry');
    await waitFor(() => c.received() === 'live\nhello through a retry', `the echo (got ${JSON.stringify(c.received())})`);
    c.socket.end();
  });

  test('prefers healthy local backends, then healthy remote ones, never unhealthy ones', async () => {
    const [local, remote, sick] = backends('local', 'remote', 'sick');
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, [entry(remote!, false), entry(local!, true), entry(sick!, true, false)]);
    for (let i = 0; i < 8; i++) expect(await whoAnswers(port)).toBe('local');
    p.setBackends(port, [entry(remote!, false), entry(local!, true, false), entry(sick!, true, false)]);
    for (let i = 0; i < 4; i++) expect(await whoAnswers(port)).toBe('remote');
  });

  test('replacing the table keeps live connections and sends new ones to the new backends', async () => {
    const [a, b] = backends('a', 'b');
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, [entry(a!)]);
    const live = await connectClient(port);
    await waitFor(() => live.received() === 'a\n', 'greeting from a');
    p.setBackends(port, [entry(b!)]);
    live.socket.write('still here');
    await waitFor(() => live.received() === 'a\nstill here', 'echo on the old connection');
    for (let i = 0; i < 4; i++) expect(await whoAnswers(port)).toBe('b');
    live.socket.end();
  });

  test('with no backend the client is closed, and the port stays usable', async () => {
    const [a] = backends('a');
    const p = proxy();
    const port = await p.publish(0);
    const c = await connectClient(port);
    await waitFor(() => c.closed(), 'client closed');
    expect(c.bytes()).toBe(0);
    p.setBackends(port, [entry(a!)]);
    expect(await whoAnswers(port)).toBe('a');
  });

  test('relays 8 MiB each way intact through backpressure', async () => {
    const [a] = backends('a');
    const p = proxy({ maxPendingBytes: 256 * 1024 });
    const port = await p.publish(0);
    p.setBackends(port, [entry(a!)]);
    const c = await connectClient(port);
    const payload = new Uint8Array(8 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    let off = 0;
    // Write as the socket takes it; the proxy pauses and resumes behind it.
    await waitFor(() => {
      if (off < payload.length) {
        const n = c.socket.write(payload, off, Math.min(64 * 1024, payload.length - off));
        if (n > 0) off += n;
      }
      return c.bytes() >= payload.length + 2;
    }, 'all bytes echoed', 30_000);
    c.socket.end();
    expect(c.bytes()).toBe(payload.length + 2);
  });

  test('a half-close from the client reaches the backend and the reply still comes back', async () => {
    const l = Bun.listen({
      hostname: HOST,
      port: 0,
      allowHalfOpen: true,
      socket: {
        data() {},
        end(s) {
          s.end('reply after FIN');
        },
      },
    });
    cleanups.push(() => l.stop(true));
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, [entry(l)]);
    const c = await connectClient(port);
    c.socket.write('request');
    c.socket.shutdown();
    await waitFor(() => c.closed(), 'connection closed');
    expect(c.received()).toBe('reply after FIN');
  });

  test('refuses connections past maxConnections and counts them', async () => {
    const [a] = backends('a');
    const p = proxy({ maxConnections: 2 });
    const port = await p.publish(0);
    p.setBackends(port, [entry(a!)]);
    const held = [await connectClient(port), await connectClient(port)];
    await waitFor(() => held.every((c) => c.received() === 'a\n'), 'two greetings');
    const third = await connectClient(port);
    await waitFor(() => third.closed(), 'third connection closed');
    expect(p.stats().refusedConnections).toBe(1);
    for (const c of held) c.socket.end();
  });

  test('proxies on different loopback addresses share one port number (several hosts on one machine)', async () => {
    const [a, b] = backends('host-a', 'host-b');
    const pa = proxy({ bindAddress: '127.0.0.2' });
    const port = await pa.publish(0);
    const pb = proxy({ bindAddress: '127.0.0.3' });
    expect(await pb.publish(port)).toBe(port);
    pa.setBackends(port, [entry(a!)]);
    pb.setBackends(port, [entry(b!)]);
    expect(await whoAnswers(port, '127.0.0.2')).toBe('host-a');
    expect(await whoAnswers(port, '127.0.0.3')).toBe('host-b');
  });

  test('IPv6 loopback backends work', async () => {
    let b6: TestBackend;
    try {
      b6 = greetingBackend('v6', '::1');
    } catch {
      console.warn('ingress.test: no ::1 here, IPv6 case skipped');
      return;
    }
    cleanups.push(() => b6.stop());
    const p = proxy();
    const port = await p.publish(0);
    p.setBackends(port, [{ addr: '::1', port: b6.port, local: true, healthy: true }]);
    expect(await whoAnswers(port)).toBe('v6');
  });

  test('a backend that never answers the connect is given up after connectTimeoutMs, and the next one serves', async () => {
    const silent = await silentBackend(HOST);
    cleanups.push(() => silent.stop());
    const [live] = backends('live');
    // The silent backend is local, so the first connection tries it first: without the connect timeout
    // it would hang there past whoAnswers' bound. Then it is benched and the next goes straight on.
    const { port } = await serving([{ addr: HOST, port: silent.port, local: true, healthy: true }, entry(live!)], { connectTimeoutMs: 300 });
    expect(await whoAnswers(port)).toBe('live');
    expect(await whoAnswers(port)).toBe('live');
  });

  test('a backend that closes first: the client gets the reply, then the end', async () => {
    const l = Bun.listen({ hostname: HOST, port: 0, socket: { open(s) { s.end('reply and goodbye'); }, data() {} } });
    cleanups.push(() => l.stop(true));
    const { p, port } = await serving([{ addr: HOST, port: l.port, local: false, healthy: true }]);
    const c = await connectClient(port);
    await waitFor(() => c.closed(), 'the end passed on');
    expect(c.received()).toBe('reply and goodbye');
    await waitFor(() => p.stats().connections === 0, 'released');
  });

  test('1000 connections that come and go leave no connection or descriptor behind', async () => {
    const [a] = backends('a');
    const { p, port } = await serving([a!]);
    await whoAnswers(port); // the relay (and its thread) are up before the count is taken
    const fds = () => readdirSync('/proc/self/fd').length;
    await waitFor(() => p.stats().connections === 0, 'warm-up connection released');
    const before = fds();
    for (let batch = 0; batch < 20; batch++) {
      const names = await Promise.all(Array.from({ length: 50 }, () => whoAnswers(port)));
      expect(new Set(names)).toEqual(new Set(['a']));
    }
    await waitFor(() => p.stats().connections === 0 && a!.open === 0, 'every relay closed');
    // Client and backend sockets of this test live in this process too: all must be gone.
    await waitFor(() => fds() <= before + 2, `descriptors back to ${before} (now ${fds()})`);
  }, 30_000);

  test('unpublishing closes the live connections through the port, and the port can be published again', async () => {
    const [a] = backends('a');
    const { p, port } = await serving([a!]);
    const c = await connectClient(port);
    await waitFor(() => c.received() === 'a\n', 'greeting');
    p.unpublish(port);
    await waitFor(() => c.closed(), 'client closed by unpublish');
    expect(p.stats().connections).toBe(0);
    expect(await p.publish(port)).toBe(port);
    p.setBackends(port, [entry(a!)]);
    expect(await whoAnswers(port)).toBe('a');
  });

  test('200 connections at once each get their own bytes back, and all are released', async () => {
    const [a, b] = backends('a', 'b');
    const { p, port } = await serving([a!, b!]);
    const clients = await Promise.all(Array.from({ length: 200 }, () => connectClient(port)));
    await waitFor(() => clients.every((c) => c.received().endsWith('\n')), 'every greeting');
    clients.forEach((c, i) => c.socket.write(`client ${i} says ${'x'.repeat(i * 50)}`));
    await waitFor(
      () => clients.every((c, i) => c.received().slice(2) === `client ${i} says ${'x'.repeat(i * 50)}`),
      'every echo',
      10_000,
    );
    for (const c of clients) c.socket.end();
    await waitFor(() => p.stats().connections === 0, 'all relays closed');
    await waitFor(() => a!.open + b!.open === 0, 'backends see every connection closed');
  });

  test('a client that resets mid-stream is cleaned up on both sides', async () => {
    const [a] = backends('a');
    const { p, port } = await serving([a!]);
    const c = await connectClient(port);
    await waitFor(() => c.received() === 'a\n', 'greeting');
    c.socket.write('some bytes');
    c.socket.terminate();
    await waitFor(() => p.stats().connections === 0 && a!.open === 0, 'relay and backend connection closed');
  });

  test('a client that leaves before any backend answers frees its place', async () => {
    const p = proxy({ maxConnections: 1 });
    const port = await p.publish(0);
    const c = await connectClient(port); // no backends: closed at once
    await waitFor(() => c.closed(), 'closed without a backend');
    const [a] = backends('a');
    p.setBackends(port, [entry(a!)]);
    expect(await whoAnswers(port)).toBe('a');
    await waitFor(() => p.stats().connections === 0, 'released');
    expect(p.stats().refusedConnections).toBe(0);
  });

  test('bad input is a named error, not a crash', async () => {
    const p = proxy();
    expect(() => p.setBackends(0, [])).toThrow(MeshConfigError);
    expect(() => p.setBackends(80, [{ addr: '', port: 1, local: true, healthy: true }])).toThrow(MeshConfigError);
    expect(() => p.setBackends(80, [{ addr: HOST, port: 70000, local: true, healthy: true }])).toThrow(/port 70000/);
    expect(() => p.setBackends(80, [], 'sctp' as never)).toThrow(MeshConfigError);
    expect(() => new IngressProxy({ maxConnections: 0 })).toThrow(MeshConfigError);
    const port = await p.publish(0);
    await expect(proxy().publish(port)).rejects.toBeInstanceOf(PortUnavailableError);
    await expect(proxy({ bindAddress: 'not-an-address' }).publish(0)).rejects.toBeInstanceOf(PortUnavailableError);
    expect(() => new IngressProxy({ tcpRelay: 'fast' as never })).toThrow(/tcpRelay/);
  });
});

describe('ingress UDP', () => {
  const proxy = proxyOf;
  test('echoes through the proxy, one flow per client, sticking to its backend', async () => {
    const echo = [await udpEchoBackend('u1', HOST), await udpEchoBackend('u2', HOST)];
    cleanups.push(() => echo.forEach((e) => e.socket.close()));
    const p = proxy({ udpIdleTimeoutMs: 100 });
    const port = await p.publish(0, 'udp');
    p.setBackends(port, echo.map((e) => entry(e)), 'udp');
    const clients = [await udpClient(HOST), await udpClient(HOST)];
    cleanups.push(() => clients.forEach((c) => c.socket.close()));
    for (const c of clients) c.socket.send('ping', port, HOST);
    await waitFor(() => clients.every((c) => c.replies.length === 1), 'a reply to each client');
    const first = clients.map((c) => c.replies[0]!.split(':')[0]);
    expect(new Set(first).size).toBe(2);
    for (const c of clients) c.socket.send('again', port, HOST);
    await waitFor(() => clients.every((c) => c.replies.length === 2), 'second replies');
    expect(clients.map((c) => c.replies[1])).toEqual(first.map((n) => `${n}:again`));
    expect(p.stats().udpFlows).toBe(2);
    await waitFor(() => p.stats().udpFlows === 0, 'idle flows forgotten');
  });

  test('a flow to a refusing backend is dropped and the client moves to a live one', async () => {
    const e = await udpEchoBackend('live', HOST);
    cleanups.push(() => e.socket.close());
    const dead = await udpEchoBackend('dead', HOST);
    const deadPort = dead.port;
    dead.socket.close();
    const p = proxy();
    const port = await p.publish(0, 'udp');
    p.setBackends(port, [{ addr: HOST, port: deadPort, local: true, healthy: true }, { addr: HOST, port: e.port, local: false, healthy: true }], 'udp');
    const c = await udpClient(HOST);
    cleanups.push(() => c.socket.close());
    // UDP gives no guarantee for the datagrams sent while the refusal is learnt: resend until answered.
    let sent = 0;
    await waitFor(() => {
      if (c.replies.length === 0 && sent < 500) c.socket.send(`ping${sent++}`, port, HOST);
      return c.replies.length > 0;
    }, 'a reply from the live backend');
    expect(c.replies[0]!.startsWith('live:')).toBe(true);
    expect(sent).toBeGreaterThan(1); // the first went to the dead backend, which is local and so preferred
  });

  test('the flow table is bounded: new clients past it are dropped and counted', async () => {
    const e = await udpEchoBackend('u', HOST);
    cleanups.push(() => e.socket.close());
    const p = proxy({ maxUdpFlows: 2 });
    const port = await p.publish(0, 'udp');
    p.setBackends(port, [entry(e)], 'udp');
    const clients = [await udpClient(HOST), await udpClient(HOST), await udpClient(HOST)];
    cleanups.push(() => clients.forEach((c) => c.socket.close()));
    for (const c of clients.slice(0, 2)) c.socket.send('x', port, HOST);
    await waitFor(() => clients.slice(0, 2).every((c) => c.replies.length === 1), 'two flows answered');
    clients[2]!.socket.send('x', port, HOST);
    await waitFor(() => p.stats().droppedDatagrams === 1, 'third client dropped');
    expect(clients[2]!.replies).toEqual([]);
    expect(p.stats().udpFlows).toBe(2);
  });
});
