import { afterEach, expect, test } from 'bun:test';
import type { EndpointPort } from '../manager/dispatcher/protocol.ts';
import { IngressProxy } from './ingress.ts';
import { MeshAgent } from './mesh-agent.ts';
import { greetingBackend, refusedPort, type TestBackend, udpClient, udpEchoBackend, waitFor, whoAnswers } from './testkit.ts';

const cleanup: (() => void)[] = [];
afterEach(() => { for (const f of cleanup.splice(0)) f(); });

function setup(nodeId = 'me') {
  const proxy = new IngressProxy({ bindAddress: '127.0.0.1', failureCooldownMs: 0 });
  const logs: string[] = [];
  const agent = new MeshAgent({ nodeId, proxy, log: (m) => logs.push(m) });
  cleanup.push(() => agent.close());
  return { proxy, agent, logs };
}

function backend(name: string): TestBackend {
  const b = greetingBackend(name);
  cleanup.push(() => b.stop());
  return b;
}

const port = (p: number, backends: { node: string; port: number }[], mode: 'ingress' | 'host' = 'ingress'): EndpointPort => ({
  service: 'web', port: p, protocol: 'tcp', target: 80, mode,
  backends: backends.map((b) => ({ node: b.node, addr: '127.0.0.1', port: b.port, healthy: true })),
});

test('a table opens its ports with its tasks, prefers the local one, follows changes and closes ports that go', async () => {
  const { proxy, agent } = setup('me');
  const remote = backend('remote');
  const local = backend('local');
  const P = refusedPort();
  agent.apply([port(P, [{ node: 'other', port: remote.port }])]);
  await agent.settled;
  expect(agent.listening()).toEqual([`${P}/tcp`]);
  expect(await whoAnswers(P)).toBe('remote');

  agent.apply([port(P, [{ node: 'other', port: remote.port }, { node: 'me', port: local.port }])]);
  await agent.settled;
  for (let i = 0; i < 3; i++) expect(await whoAnswers(P)).toBe('local');

  agent.apply([]);
  await agent.settled;
  expect(agent.listening()).toEqual([]);
  expect(proxy.stats().ports).toEqual([]);
});

test('a host-mode port is published only where one of its tasks runs, and only to local tasks', async () => {
  const { agent } = setup('me');
  const local = backend('local');
  const remote = backend('remote');
  const P = refusedPort();
  agent.apply([port(P, [{ node: 'other', port: remote.port }], 'host')]);
  await agent.settled;
  expect(agent.listening()).toEqual([]);
  agent.apply([port(P, [{ node: 'other', port: remote.port }, { node: 'me', port: local.port }], 'host')]);
  await agent.settled;
  expect(agent.listening()).toEqual([`${P}/tcp`]);
  for (let i = 0; i < 3; i++) expect(await whoAnswers(P)).toBe('local');
});

test('a port held by something else is logged and not listed; the rest of the table still applies', async () => {
  const { agent, logs } = setup('me');
  const b = backend('b');
  const squatter = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  cleanup.push(() => squatter.stop(true));
  const P = refusedPort();
  agent.apply([port(squatter.port, [{ node: 'x', port: b.port }]), port(P, [{ node: 'x', port: b.port }])]);
  await agent.settled;
  expect(agent.listening()).toEqual([`${P}/tcp`]);
  expect(logs.some((l) => l.includes(`cannot listen on 127.0.0.1:${squatter.port}/tcp`))).toBe(true);
  expect(await whoAnswers(P)).toBe('b');

  // The usual cause with process tasks: a local task listening on the published port itself.
  agent.apply([port(b.port, [{ node: 'me', port: b.port }])]);
  await agent.settled;
  expect(logs.at(-1)).toContain(`a task on this host listens on port ${b.port} itself: publish the service on another port than its target`);
});

test('a UDP port is published and relayed like a TCP one', async () => {
  const { agent } = setup('me');
  const echo = await udpEchoBackend('u');
  cleanup.push(() => echo.socket.close());
  const free = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
  const P = free.port;
  free.close();
  agent.apply([{ service: 'dns', port: P, protocol: 'udp', target: 53, mode: 'ingress', backends: [{ node: 'other', addr: '127.0.0.1', port: echo.port, healthy: true }] }]);
  await agent.settled;
  expect(agent.listening()).toEqual([`${P}/udp`]);
  const c = await udpClient();
  cleanup.push(() => c.socket.close());
  c.socket.send('ping', P, '127.0.0.1');
  await waitFor(() => c.replies.length > 0, 'a UDP reply through the mesh');
  expect(c.replies[0]).toBe('u:ping');
});

test('an overlay task is reached at its inner address on its own host, through its host elsewhere; connections from that host stay local', async () => {
  const onOverlay = backend('overlay-task');
  const viaHost = backend('via-its-host');
  const P = refusedPort();
  const table = (): EndpointPort[] => [{
    service: 'web', port: P, protocol: 'tcp', target: 80, mode: 'ingress',
    backends: [{ node: 'b', addr: '127.0.0.1', port: viaHost.port, healthy: true, inner: { addr: '127.0.0.1', port: onOverlay.port } }],
  }];
  // On host b (the task's own): the inner address.
  const b = setup('b');
  b.agent.apply(table());
  await b.agent.settled;
  expect(await whoAnswers(P)).toBe('overlay-task');
  expect(b.agent.isPeer('127.0.0.1')).toBe(false);
  b.agent.close();
  // On host a: b's mesh on the published port (here, a stand-in), and b's address is a peer.
  const a = setup('a');
  a.agent.apply(table());
  await a.agent.settled;
  expect(await whoAnswers(P)).toBe('via-its-host');
  expect(a.agent.isPeer('127.0.0.1')).toBe(true);
  expect(a.agent.isPeer('::ffff:127.0.0.1')).toBe(true);
});

test('a connection from a peer host is served by local backends only', async () => {
  const local = backend('local');
  const remote = backend('remote');
  const P = refusedPort();
  const proxy = new IngressProxy({ bindAddress: '127.0.0.1', failureCooldownMs: 0, localOnlyFrom: () => true });
  cleanup.push(() => proxy.close());
  proxy.setBackends(P, [{ addr: '127.0.0.1', port: remote.port, local: false, healthy: true }]);
  await proxy.publish(P);
  expect(await whoAnswers(P).catch(() => 'refused')).not.toBe('remote');
  proxy.setBackends(P, [{ addr: '127.0.0.1', port: remote.port, local: false, healthy: true }, { addr: '127.0.0.1', port: local.port, local: true, healthy: true }]);
  for (let i = 0; i < 3; i++) expect(await whoAnswers(P)).toBe('local');
});
