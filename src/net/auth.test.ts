import { afterEach, describe, expect, test } from 'bun:test';
import { type FrameSchema, is } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import { type NodeIdentity, verifyNodeCert } from '../manager/ca/index.ts';
import { AuthError, AuthRefusedError } from './auth.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

interface Echo {
  say: { text: string };
}
const ECHO: FrameSchema<Echo> = { say: { version: 1, maxBytes: 2 * 1024 * 1024, check: is.shape({ text: is.string(2_000_000) }) } };

const started: TestNode[] = [];
async function node(...args: Parameters<typeof testNode>): Promise<TestNode> {
  const n = await testNode(...args);
  started.push(n);
  return n;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

/** Serve an echo on `spec`, recording who called. */
async function serveEcho(n: TestNode, spec: { id: string; roles: readonly ('manager' | 'worker')[] }): Promise<NodeIdentity[]> {
  const callers: NodeIdentity[] = [];
  await n.guard.handle(spec, ({ stream, connection, peer }) => {
    callers.push(peer);
    const ch = new FrameChannel(new StreamConn(stream, connection), ECHO);
    ch.onMessage((m) => ch.send(m));
  });
  return callers;
}

describe('mutual authentication', () => {
  test('two managers of one cluster authenticate each other, then a guarded protocol carries frames', async () => {
    const cluster = await testCluster();
    const m1 = await node(cluster, 'm1', 'manager');
    const m2 = await node(cluster, 'm2', 'manager');
    const callers = await serveEcho(m1, PROTOCOLS.raft);

    const { stream, connection, peer } = await m2.guard.open(m1.addr, PROTOCOLS.raft);
    expect(peer).toMatchObject({ nodeId: 'm1', role: 'manager', peerId: m1.node.peerId.toString() });
    const ch = new FrameChannel(new StreamConn(stream, connection), ECHO);
    const got: string[] = [];
    ch.onMessage((m) => got.push(m.b.text));
    const big = 'x'.repeat(1_500_000);
    for (const text of ['one', big, 'three']) ch.send({ t: 'say', b: { text } });
    await waitFor(() => got.length === 3, 'three echoes');
    expect(got[0]).toBe('one');
    expect(got[1]!.length).toBe(big.length);
    expect(got[2]).toBe('three');
    expect(callers.map((c) => c.nodeId)).toEqual(['m2']);
    await waitFor(() => m1.guard.peerOf(m1.node.getConnections(m2.node.peerId)[0]!) !== null, 'm1 sees m2 authenticated');
    expect(m1.refusals).toEqual([]);
    expect(m2.refusals).toEqual([]);
  });

  test('the listener can open a protocol back on a connection the other side dialled', async () => {
    const cluster = await testCluster();
    const m1 = await node(cluster, 'm1', 'manager');
    const w1 = await node(cluster, 'w1', 'worker');
    const callers = await serveEcho(w1, PROTOCOLS.dispatcher);
    await w1.guard.open(m1.addr, PROTOCOLS.dispatcher).catch(() => {}); // w1 → m1 (m1 serves nothing: refused, connection stays)
    const { peer } = await m1.guard.open(w1.node.peerId, PROTOCOLS.dispatcher);
    expect(peer.nodeId).toBe('w1');
    await waitFor(() => callers.length === 1, 'w1 served m1');
    expect(callers[0]!.nodeId).toBe('m1');
  });
});

describe('refusals', () => {
  test('a stranger with a self-made CA is refused, and says why', async () => {
    const cluster = await testCluster();
    const strangers = await testCluster();
    const m1 = await node(cluster, 'm1', 'manager');
    await serveEcho(m1, PROTOCOLS.dispatcher);
    // The stranger trusts our root (it got hold of it) but its own certificate is self-made.
    const stranger = await node(strangers, 'm1', 'manager', { trustCluster: cluster });
    const err = await stranger.guard.open(m1.addr, PROTOCOLS.dispatcher).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthRefusedError);
    expect((err as Error).message).toMatch(/refused this node: the certificate of peer \S+ is not signed by this cluster's root CA/);
    await waitFor(() => m1.refusals.length > 0, 'm1 records the refusal');
    expect(m1.refusals[0]!.reason).toMatch(/not signed by this cluster's root CA/);

    // And when our node dials the stranger, it is our side that refuses.
    const err2 = await m1.guard.open(stranger.addr, PROTOCOLS.dispatcher).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/not signed by this cluster's root CA/);
  });

  test('a node of another cluster id is refused even under the same root', async () => {
    const cluster = await testCluster('c1');
    const m1 = await node(cluster, 'm1', 'manager');
    await serveEcho(m1, PROTOCOLS.dispatcher);
    const other = await node({ ...cluster, clusterId: 'c2' }, 'w9', 'worker', { trustCluster: cluster });
    const err = await other.guard.open(m1.addr, PROTOCOLS.dispatcher).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/belongs to cluster c2, not to this cluster \(c1\)/);
  });

  test('a worker cannot speak raft: its own end refuses early, the manager refuses the stream', async () => {
    const cluster = await testCluster();
    const m1 = await node(cluster, 'm1', 'manager');
    const callers = await serveEcho(m1, PROTOCOLS.raft);
    const w1 = await node(cluster, 'w1', 'worker');
    await expect(w1.guard.open(m1.addr, PROTOCOLS.raft)).rejects.toThrow(/this node is a worker; \/shoal\/raft\/1 is for manager nodes only/);

    // A worker that skips its own check: authenticates, then asks for raft directly.
    await w1.guard.open(m1.addr, PROTOCOLS.dispatcher).catch(() => {});
    await waitFor(() => w1.node.getConnections(m1.node.peerId).some((c) => w1.guard.peerOf(c) !== null), 'w1 authenticated');
    const stream = await w1.node.dialProtocol(m1.node.peerId, PROTOCOLS.raft.id);
    await waitFor(() => stream.status !== 'open', 'raft stream reset');
    expect(callers).toEqual([]);
    expect(m1.refusals.some((r) => r.protocol === PROTOCOLS.raft.id && /node w1 is a worker/.test(r.reason))).toBe(true);
  });

  test('a peer that never authenticated is refused on every guarded protocol', async () => {
    const cluster = await testCluster();
    const m1 = await node(cluster, 'm1', 'manager');
    const callers = await serveEcho(m1, PROTOCOLS.dispatcher);
    const bare = await node(cluster, 'w1', 'worker');
    await bare.guard.stop(); // speaks libp2p, never sends a certificate
    const stream = await bare.node.dialProtocol(m1.addr, PROTOCOLS.dispatcher.id);
    await waitFor(() => stream.status !== 'open', 'stream refused');
    expect(callers).toEqual([]);
    expect(m1.refusals.some((r) => /has not authenticated/.test(r.reason))).toBe(true);
  });

  test('a removed node is cut off at once and refused from then on', async () => {
    const cluster = await testCluster();
    const removed = new Set<string>();
    const m1 = await node(cluster, 'm1', 'manager', { isRemoved: (id) => removed.has(id) });
    const callers = await serveEcho(m1, PROTOCOLS.dispatcher);
    const w1 = await node(cluster, 'w1', 'worker');
    const { connection } = await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
    await waitFor(() => callers.length === 1, 'w1 served');

    removed.add('w1');
    m1.guard.revoke('w1');
    await waitFor(() => connection.status !== 'open', 'w1 cut off');
    await expect(w1.guard.open(m1.addr, PROTOCOLS.dispatcher)).rejects.toThrow();
    expect(callers.length).toBe(1);

    // Without the deny list (say, after a restart) the removed-node check refuses it at authentication.
    m1.denyList.delete(w1.node.peerId.toString());
    const err = await w1.guard.open(m1.addr, PROTOCOLS.dispatcher).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/node w1 was removed from the cluster/);
    expect(err).toBeInstanceOf(AuthError);
  });

  test('an inbound connection that never authenticates is closed after the bound', async () => {
    const cluster = await testCluster();
    const m1 = await node(cluster, 'm1', 'manager', { authTimeoutMs: 200 });
    const bare = await node(cluster, 'w1', 'worker');
    await bare.guard.stop();
    const connection = await bare.node.dial(m1.addr);
    await waitFor(() => connection.status !== 'open', 'the silent connection closed');
    expect(m1.refusals.some((r) => /did not authenticate within 200 ms/.test(r.reason))).toBe(true);
  });

  test('a certificate is verified once per peer, while its dates and the node\'s removal are checked on every connection', async () => {
    const cluster = await testCluster();
    let now = Date.now();
    let verified = 0;
    const removed = new Set<string>();
    const m1 = await node(cluster, 'm1', 'manager', {
      now: () => now,
      isRemoved: (id) => removed.has(id),
      verify: (...args) => { verified++; return verifyNodeCert(...args); },
    });
    const callers = await serveEcho(m1, PROTOCOLS.dispatcher);
    const w1 = await node(cluster, 'w1', 'worker');
    for (let i = 1; i <= 3; i++) {
      await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
      await waitFor(() => callers.length === i, `stream ${i} served`);
      await w1.node.hangUp(m1.node.peerId);
    }
    expect(verified).toBe(1);
    // Another node presenting w1's certificate is refused: it is not w1's key.
    const w2 = await node(cluster, 'w2', 'worker');
    w2.identity.certPem = w1.identity.certPem;
    await expect(w2.guard.open(m1.addr, PROTOCOLS.dispatcher)).rejects.toThrow();
    expect(m1.refusals.some((r) => /belongs to peer/.test(r.reason))).toBe(true);
    // Removed, then expired: refused though the certificate was verified before.
    removed.add('w1');
    await expect(w1.guard.open(m1.addr, PROTOCOLS.dispatcher)).rejects.toThrow();
    expect(m1.refusals.some((r) => /w1 was removed/.test(r.reason))).toBe(true);
    removed.clear();
    await w1.node.hangUp(m1.node.peerId);
    now = w1.identity.notAfter + 1;
    await expect(w1.guard.open(m1.addr, PROTOCOLS.dispatcher)).rejects.toThrow();
    expect(m1.refusals.some((r) => /expired/.test(r.reason))).toBe(true);
    expect(callers.length).toBe(3);
  });

  test('a certificate that expires while connected is refused on the next stream', async () => {
    const cluster = await testCluster();
    let now = Date.now();
    const m1 = await node(cluster, 'm1', 'manager', { now: () => now });
    const callers = await serveEcho(m1, PROTOCOLS.dispatcher);
    const w1 = await node(cluster, 'w1', 'worker');
    await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
    await waitFor(() => callers.length === 1, 'first stream served');
    now = w1.identity.notAfter + 1;
    const { stream } = await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
    await waitFor(() => stream.status !== 'open', 'second stream refused');
    expect(callers.length).toBe(1);
    expect(m1.refusals.some((r) => /the certificate of node w1 expired/.test(r.reason))).toBe(true);
  });
});
