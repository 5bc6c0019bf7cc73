import { afterEach, describe, expect, test } from 'bun:test';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { ManualClock } from '../../plugins/mock/clock.ts';
import { guardTopic, SubscriptionRepair } from './gossip.ts';
import { PROTOCOLS } from './protocols.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

const TOPIC = 'shoal/test/1';
const started: TestNode[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0)) f();
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

function listen(n: TestNode, rejected: { reason: string }[] = []) {
  const got: string[] = [];
  guardTopic(n.node, TOPIC, {
    isAuthenticated: (p) => n.guard.isAuthenticatedPeer(p),
    isMember: (p) => n.guard.isAuthenticatedPeer(p) || p === n.node.peerId.toString(),
    onRejected: (e) => rejected.push(e),
  });
  n.node.services.pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic === TOPIC) got.push(new TextDecoder().decode(evt.detail.data));
  });
  return got;
}

describe('gossip closed to the cluster', () => {
  test('authenticated nodes gossip; a connected peer that never authenticated is out of the mesh and graylisted', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    const bare = await testNode(cluster, 'w2', 'worker');
    started.push(m1, w1, bare);
    await bare.guard.stop(); // connected, speaks gossipsub, never authenticates
    await m1.guard.handle(PROTOCOLS.dispatcher, () => {});
    const rejected: { reason: string }[] = [];
    const atM1 = listen(m1, rejected);
    listen(w1);
    const atBare = listen(bare);
    // As the daemon does (HostGossip): a subscription read before the sender was trusted is lost
    // for good, which a loaded machine makes likely; resend it once the peer is authenticated.
    const repairs = [m1, w1].map((n) => new SubscriptionRepair(n.node, { topics: () => [TOPIC], isAuthenticated: (p) => n.guard.isAuthenticatedPeer(p) }));
    for (const r of repairs) r.start();
    cleanups.push(() => { for (const r of repairs) r.stop(); });
    await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
    await bare.node.dial(m1.addr);

    // The class has these; the exported interface does not.
    const pubsub = m1.node.services.pubsub as typeof m1.node.services.pubsub & { getMeshPeers(t: string): string[]; getScore(p: string): number };
    await waitFor(() => pubsub.getMeshPeers(TOPIC).includes(w1.node.peerId.toString()), 'w1 in m1\'s mesh', 15_000);
    let n = 0;
    await waitFor(() => {
      void w1.node.services.pubsub.publish(TOPIC, new TextEncoder().encode(`hello ${n++}`)).catch(() => {});
      return atM1.some((t) => t.startsWith('hello'));
    }, 'm1 hears w1', 15_000);

    const bareId = bare.node.peerId.toString();
    await waitFor(() => pubsub.getPeers().some((p) => p.toString() === bareId), 'm1\'s gossipsub knows the bare peer');
    expect(pubsub.getMeshPeers(TOPIC)).not.toContain(bareId);
    expect(pubsub.getScore(bareId)).toBeLessThan(-1000);
    const result = await pubsub.publish(TOPIC, new TextEncoder().encode('for members'));
    expect(result.recipients.map(String)).not.toContain(bareId);
    expect(atBare).toEqual([]);

    // What gets past the scores still meets the validator.
    const validate = pubsub.topicValidators.get(TOPIC)!;
    const signed = (from: TestNode) => ({
      type: 'signed' as const, from: from.node.peerId, topic: TOPIC, data: new Uint8Array(1), sequenceNumber: 1n,
      signature: new Uint8Array(64), key: from.key.publicKey,
    });
    expect(await validate(bare.node.peerId, signed(w1))).toBe(TopicValidatorResult.Reject);
    expect(await validate(w1.node.peerId, { type: 'unsigned', topic: TOPIC, data: new Uint8Array(1) })).toBe(TopicValidatorResult.Reject);
    expect(await validate(w1.node.peerId, signed(bare))).toBe(TopicValidatorResult.Reject);
    expect(await validate(w1.node.peerId, signed(w1))).toBe(TopicValidatorResult.Accept);
    expect(rejected.map((r) => r.reason)).toEqual([
      'relayed by a peer that has not authenticated', 'unsigned message', 'signed by a peer that is not a member of the cluster',
    ]);
  });
});

describe('SubscriptionRepair', () => {
  /** A node with gossipsub's few members the repair uses; peers are plain strings. */
  function fakeNode() {
    const events = new EventTarget();
    const peers: string[] = [];
    const sent: string[] = [];
    let walks = 0;
    const node = {
      services: {
        pubsub: {
          getPeers: () => { walks++; return peers.map((p) => ({ toString: () => p })); },
          getTopics: () => [TOPIC],
          sendSubscriptions: (peer: string) => void sent.push(peer),
        },
      },
      getConnections: (p: { toString(): string }) => [{ id: `conn-${p.toString()}` }],
      addEventListener: events.addEventListener.bind(events),
      removeEventListener: events.removeEventListener.bind(events),
    };
    return { node: node as unknown as ConstructorParameters<typeof SubscriptionRepair>[0], events, peers, sent, walks: () => walks };
  }

  test('resends once per peer after the delay, then stops walking the peers until a connection opens', () => {
    const clock = new ManualClock(1_000);
    const f = fakeNode();
    f.peers.push('a', 'b');
    const repair = new SubscriptionRepair(f.node, { topics: () => [TOPIC], clock, afterMs: 1_500, checkEveryMs: 500 });
    repair.start();
    clock.advance(500);
    expect(f.sent).toEqual([]);
    clock.advance(1_500);
    expect(f.sent.sort()).toEqual(['a', 'b']);
    // Nothing is waiting and no connection opened: the passes stop walking.
    clock.advance(5_000);
    const walks = f.walks();
    clock.advance(60_000);
    expect(f.walks()).toBe(walks);
    expect(f.sent).toHaveLength(2);

    // A new peer connects: the passes walk again until it has had its resend.
    f.peers.push('c');
    f.events.dispatchEvent(new Event('connection:open'));
    clock.advance(2_500);
    expect(f.sent.sort()).toEqual(['a', 'b', 'c']);
    const after = f.walks();
    expect(after).toBeGreaterThan(walks);
    clock.advance(60_000);
    expect(f.walks()).toBe(after);
    expect(repair.resent).toBe(3);
    repair.stop();
  });

  test('a peer not yet authenticated keeps the passes going until it is, then gets its resend', () => {
    const clock = new ManualClock(1_000);
    const f = fakeNode();
    f.peers.push('a');
    let trusted = false;
    const repair = new SubscriptionRepair(f.node, { topics: () => [TOPIC], clock, afterMs: 1_500, checkEveryMs: 500, isAuthenticated: () => trusted });
    repair.start();
    clock.advance(30_000); // long past the window a new connection opens
    expect(f.sent).toEqual([]);
    trusted = true;
    clock.advance(1_000);
    expect(f.sent).toEqual([]); // authenticated for less than afterMs
    clock.advance(1_000);
    expect(f.sent).toEqual(['a']);
    repair.stop();
  });
});
