import { afterEach, describe, expect, test } from 'bun:test';
import type { Message } from '../raft/index.ts';
import { PROTOCOLS } from './protocols.ts';
import { Libp2pRaftTransport, RAFT_RECEIVE_WINDOW } from './raft-transport.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function host(n: TestNode, book: Map<string, TestNode>) {
  const t = new Libp2pRaftTransport(n.guard, { selfId: n.identity.nodeId, locate: (id) => book.get(id)?.addr ?? null });
  await t.start();
  const got: Message[] = [];
  t.onMessage((m) => got.push(m));
  cleanups.push(async () => {
    await t.stop();
    await n.stop();
  });
  return { t, got };
}

describe('raft transport over libp2p', () => {
  test('delivers raft messages both ways between two managers, entries and bytes intact', async () => {
    const cluster = await testCluster();
    const book = new Map<string, TestNode>();
    for (const id of ['m1', 'm2']) book.set(id, await testNode(cluster, id, 'manager'));
    const a = await host(book.get('m1')!, book);
    const b = await host(book.get('m2')!, book);

    const append: Message = {
      type: 'append', from: 'm1', to: 'm2', term: 3, index: 7, logTerm: 2, commit: 6,
      entries: [{ term: 3, index: 8, type: 'normal', data: new Uint8Array([1, 2, 3, 255]) }],
    };
    const msgs: Message[] = [append];
    for (let i = 0; i < 50; i++) msgs.push({ type: 'heartbeat', from: 'm1', to: 'm2', term: 3, commit: i });
    a.t.send(msgs);
    await waitFor(() => b.got.length === 51, 'm2 receives 51 messages');
    expect(b.got[0]!.entries![0]!.index).toBe(8);
    expect([...b.got[0]!.entries![0]!.data]).toEqual([1, 2, 3, 255]);
    expect(b.got.slice(1).map((m) => m.commit)).toEqual([...Array(50).keys()]);

    b.t.send([{ type: 'appendResp', from: 'm2', to: 'm1', term: 3, index: 8 }]);
    await waitFor(() => a.got.length === 1, 'm1 receives the response');
    expect(a.got[0]).toMatchObject({ type: 'appendResp', from: 'm2', index: 8 });
  });

  test('a manager offers a window of a whole frame on each raft stream to it: a large append leaves at once', async () => {
    const cluster = await testCluster();
    const book = new Map<string, TestNode>();
    for (const id of ['m1', 'm2']) book.set(id, await testNode(cluster, id, 'manager'));
    const a = await host(book.get('m1')!, book);
    const b = await host(book.get('m2')!, book);
    a.t.send([{ type: 'heartbeat', from: 'm1', to: 'm2', term: 1, commit: 0 }]);
    await waitFor(() => b.got.length === 1, 'm2 hears m1');
    const raftStream = () => book.get('m1')!.node.getConnections().flatMap((c) => c.streams).find((st) => st.protocol === PROTOCOLS.raft.id && st.direction === 'outbound');
    const credit = () => (raftStream() as unknown as { sendWindowCapacity?: number } | undefined)?.sendWindowCapacity ?? 0;
    await waitFor(() => credit() > RAFT_RECEIVE_WINDOW - 1024, 'm2\'s window update');
    // A 3 MiB append: the sender's credit covers it whole, so it is on its way at once.
    const data = new Uint8Array(3 * 1024 * 1024);
    a.t.send([{ type: 'append', from: 'm1', to: 'm2', term: 1, index: 0, logTerm: 0, commit: 0, entries: [{ term: 1, index: 1, type: 'normal', data }] }]);
    expect(credit()).toBeLessThan(RAFT_RECEIVE_WINDOW - data.byteLength);
    await waitFor(() => b.got.length === 2, 'm2 receives the append', 30_000);
    expect(b.got[1]!.entries![0]!.data.byteLength).toBe(data.byteLength);
  });

  test('keepLinks opens a stream to each member that has none, before any message, and again once it closed', async () => {
    const cluster = await testCluster();
    const book = new Map<string, TestNode>();
    for (const id of ['m1', 'm2', 'm3']) book.set(id, await testNode(cluster, id, 'manager'));
    const a = await host(book.get('m2')!, book);
    const b = await host(book.get('m3')!, book);
    await host(book.get('m1')!, book);
    expect(a.t.reachable('m3')).toBe(false);
    a.t.keepLinks(['m1', 'm2', 'm3']); // itself is skipped
    await waitFor(() => a.t.reachable('m1') && a.t.reachable('m3'), 'm2 linked to m1 and m3');
    expect(a.t.reachable('m2')).toBe(false);
    // The link carries messages at once, with no dial in between.
    a.t.send([{ type: 'preVote', from: 'm2', to: 'm3', term: 5, index: 1, logTerm: 1 }]);
    await waitFor(() => b.got.length === 1, 'm3 receives the pre-vote');
    // m3's end closes the stream: the next keepLinks opens another.
    await book.get('m2')!.node.hangUp(book.get('m3')!.node.peerId);
    await waitFor(() => !a.t.reachable('m3'), 'the link to m3 closed');
    await waitFor(() => { a.t.keepLinks(['m3']); return a.t.reachable('m3'); }, 'm2 linked to m3 again');
  });

  test('a message whose sender is not the authenticated node closes the stream and is dropped', async () => {
    const cluster = await testCluster();
    const book = new Map<string, TestNode>();
    for (const id of ['m1', 'm2']) book.set(id, await testNode(cluster, id, 'manager'));
    const a = await host(book.get('m1')!, book);
    const b = await host(book.get('m2')!, book);
    a.t.send([{ type: 'heartbeat', from: 'm9', to: 'm2', term: 1 }]);
    a.t.send([{ type: 'heartbeat', from: 'm1', to: 'm2', term: 1 }]);
    await waitFor(() => book.get('m1')!.node.getConnections().length > 0, 'm1 connected');
    // The spoofed one closed the stream; later messages go on a new stream once it is noticed.
    await waitFor(() => { a.t.send([{ type: 'heartbeat', from: 'm1', to: 'm2', term: 2 }]); return b.got.some((m) => m.term === 2); }, 'a genuine message arrives');
    expect(b.got.every((m) => m.from === 'm1')).toBe(true);
  });

  test('a worker has no raft: its messages are dropped, nothing reaches the manager', async () => {
    const cluster = await testCluster();
    const book = new Map<string, TestNode>();
    book.set('m1', await testNode(cluster, 'm1', 'manager'));
    book.set('w1', await testNode(cluster, 'w1', 'worker'));
    const m = await host(book.get('m1')!, book);
    const errors: string[] = [];
    const w = book.get('w1')!;
    const t = new Libp2pRaftTransport(w.guard, { selfId: 'w1', locate: (id) => book.get(id)?.addr ?? null, onError: (_, e) => errors.push(String(e)) });
    cleanups.push(async () => { await t.stop(); await w.stop(); });
    t.send([{ type: 'vote', from: 'w1', to: 'm1', term: 9 }]);
    await waitFor(() => errors.length > 0, 'the worker gives up');
    expect(errors[0]).toMatch(/this node is a worker; \/shoal\/raft\/1 is for manager nodes only/);
    expect(m.got).toEqual([]);
  });
});
