import { afterEach, describe, expect, test } from 'bun:test';
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { encode } from '../lib/codec.ts';
import { decodeAnnouncement, encodeAnnouncement, HOST_LIMITS, HOSTS_TOPIC, type HostAnnouncement, type HostNets } from './host-announcement.ts';
import { HostGossip } from './host-gossip.ts';
import { ann, FakeClock } from './host-gossip.test-helper.ts';
import type { NetNode } from './node.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

/** A NetNode stand-in with just what HostGossip uses: the topic validators, subscribe, publish. */
function fakeNode() {
  const published: HostAnnouncement[] = [];
  const subscribed = new Set<string>();
  const pubsub = {
    topicValidators: new Map<string, (peer: PeerId, msg: Message) => TopicValidatorResult>(),
    subscribe: (t: string) => void subscribed.add(t),
    addEventListener: () => {},
    getSubscribers: () => [],
    removeEventListener: () => {},
    unsubscribe: (t: string) => void subscribed.delete(t),
    publish: async (_t: string, data: Uint8Array) => {
      const d = decodeAnnouncement(data);
      if (!d.ok) throw new Error('published a bad announcement');
      published.push(d.announcement);
      return { recipients: [] };
    },
  };
  const node = { services: { pubsub }, addEventListener: () => {}, removeEventListener: () => {} };
  return { node: node as unknown as NetNode, pubsub, published, subscribed };
}

async function peer() {
  const key = await generateKeyPair('Ed25519');
  return { id: peerIdFromPrivateKey(key), key };
}

describe('HostGossip', () => {
  test('announces at start, every period, and once per burst of changes (at most every 100 ms)', async () => {
    const clock = new FakeClock();
    const f = fakeNode();
    const g = new HostGossip({ node: f.node, nodeId: 'me', role: 'worker', addr: '192.168.0.1', nodeOfPeer: () => undefined, clock, periodMs: 1000 });
    g.start();
    expect(f.subscribed.has(HOSTS_TOPIC)).toBe(true);
    await Promise.resolve();
    expect(f.published.map((a) => a.seq)).toEqual([1]);
    expect(f.published[0]).toMatchObject({ node: 'me', role: 'worker', addr: '192.168.0.1', incarnation: 1_000_000, nets: {} });
    expect(g.directory.get('me')?.local).toBe(true);

    clock.advance(50);
    g.setLocal({ net1: ['10.1.0.2'] });
    g.setLocal({ net1: ['10.1.0.2', '10.1.0.3'] });
    g.setRole('manager');
    clock.advance(49);
    expect(f.published.length).toBe(1);
    clock.advance(1); // 100 ms after the last announcement
    expect(f.published.length).toBe(2);
    expect(f.published[1]).toMatchObject({ seq: 2, role: 'manager', nets: { net1: ['10.1.0.2', '10.1.0.3'] } });
    g.setLocal({ net1: ['10.1.0.3', '10.1.0.2'] }); // the same set: nothing to say
    clock.advance(999);
    expect(f.published.length).toBe(2);
    clock.advance(1);
    expect(f.published.length).toBe(3); // the periodic one
    clock.advance(3000);
    expect(f.published.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(g.directory.get('me')!.announcement.seq).toBe(6);
    await Promise.resolve();
    expect(g.stats().published).toBe(6);

    expect(() => g.setLocal({ net1: ['10.1.0.2/24'] })).toThrow(RangeError);
    g.stop();
    expect(f.subscribed.has(HOSTS_TOPIC)).toBe(false);
    expect(f.pubsub.topicValidators.has(HOSTS_TOPIC)).toBe(false);
    expect(clock.pending).toBe(0);
  });

  test('receipt: the node must be the signer\'s; malformed, unknown versions and stale ones are counted, never thrown', async () => {
    const clock = new FakeClock();
    const f = fakeNode();
    const [pa, pb, stranger, relay, unauth] = await Promise.all([peer(), peer(), peer(), peer(), peer()]);
    const nodes = new Map([[pa.id.toString(), 'a'], [pb.id.toString(), 'b'], [relay.id.toString(), 'r']]);
    const logs: string[] = [];
    const g = new HostGossip({
      node: f.node, nodeId: 'me', role: 'manager', addr: '192.168.0.1', clock,
      nodeOfPeer: (p) => nodes.get(p), isAuthenticated: (p) => p !== unauth.id.toString(), log: (m) => logs.push(m),
    });
    g.start();
    const validate = f.pubsub.topicValidators.get(HOSTS_TOPIC)!;
    const signed = (from: typeof pa, data: unknown): Message => ({
      type: 'signed', from: from.id, topic: HOSTS_TOPIC, data: data instanceof Uint8Array ? data : encode(data),
      sequenceNumber: 1n, signature: new Uint8Array(64), key: from.key.publicKey,
    });
    const via = relay.id;
    const { Accept, Reject, Ignore } = TopicValidatorResult;

    expect(validate(via, signed(pa, ann('a', { seq: 2, nets: { n: ['10.0.0.2'] } })))).toBe(Accept);
    expect(validate(via, signed(pa, ann('b')))).toBe(Reject); // a speaking for b
    expect(validate(via, signed(stranger, ann('a', { seq: 3 })))).toBe(Ignore);
    expect(validate(unauth.id, signed(pa, ann('a', { seq: 3 })))).toBe(Reject);
    expect(validate(via, { type: 'unsigned', topic: HOSTS_TOPIC, data: encode(ann('a', { seq: 3 })) })).toBe(Reject);
    expect(validate(via, signed(pa, { ...ann('a', { seq: 3 }), nets: { n: ['x'] } }))).toBe(Reject);
    expect(validate(via, signed(pa, new Uint8Array([0xc1, 0xc1])))).toBe(Reject);
    expect(validate(via, signed(pa, new Uint8Array(HOST_LIMITS.maxBytes + 1)))).toBe(Reject);
    expect(validate(via, signed(pa, { t: 'host', v: 9, node: 'a' }))).toBe(Accept); // relayed for newer hosts, not applied
    expect(validate(via, signed(pa, ann('a', { seq: 1 })))).toBe(Ignore);
    expect(validate(via, signed(pb, ann('b', { seq: 1, addr: '192.168.0.3', nets: { n: ['10.0.0.3'] } })))).toBe(Accept);

    expect(g.directory.get('a')!.announcement.seq).toBe(2);
    expect(g.directory.forwarding('n').map((e) => [e.node, e.taskAddr])).toEqual([['a', '10.0.0.2'], ['b', '10.0.0.3']]);
    const s = g.stats();
    expect(s.received).toBe(11);
    expect(s.applied).toBe(2);
    expect(s.unknownVersion).toBe(1);
    expect(s.dropped).toEqual({
      unsigned: 1, unauthenticatedRelay: 1, unknownSigner: 1, signerMismatch: 1, tooLarge: 1, undecodable: 1, malformed: 1, stale: 1, self: 0,
    });
    expect(logs.some((l) => l.includes('signerMismatch') && l.includes('signed by node a'))).toBe(true);
    g.stop();
  });
});

// ------------------------------------------------------------------ three real libp2p nodes

const started: TestNode[] = [];
const gossips: HostGossip[] = [];
afterEach(async () => {
  for (const g of gossips.splice(0)) g.stop();
  await Promise.all(started.splice(0).map((n) => n.stop().catch(() => {})));
});

describe('host gossip over libp2p', () => {
  test('three hosts (w1 — m1 — w2): directories converge, a change propagates, a stopped host expires', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    const w2 = await testNode(cluster, 'w2', 'worker');
    started.push(m1, w1, w2);
    const nodeOf = new Map([m1, w1, w2].map((n) => [n.identity.peerId, n.identity.nodeId]));
    const hosts = [
      { t: m1, id: 'm1', role: 'manager' as const, addr: '192.168.50.1', nets: { netA: ['10.10.0.2'] } },
      { t: w1, id: 'w1', role: 'worker' as const, addr: '192.168.50.2', nets: { netA: ['10.10.0.3', '10.10.0.4'], netB: ['10.20.0.2'] } },
      { t: w2, id: 'w2', role: 'worker' as const, addr: '192.168.50.3', nets: { netB: ['10.20.0.3'] } },
    ];
    const periodMs = 200;
    const g = hosts.map((h) => {
      const x = new HostGossip({
        node: h.t.node, nodeId: h.id, role: h.role, addr: h.addr, periodMs,
        nodeOfPeer: (p) => nodeOf.get(p), isAuthenticated: (p) => h.t.guard.isAuthenticatedPeer(p), log: (m) => console.log(`[${h.id}] ${m}`),
      });
      x.setLocal(h.nets as HostNets);
      gossips.push(x);
      return x;
    });
    const [gm1, gw1, gw2] = g as [HostGossip, HostGossip, HostGossip];

    // As in the daemon: each host starts announcing once its node is up, then connects. Workers
    // dial managers only, so w2 hears w1 through m1.
    for (const x of g) x.start();
    const t0 = performance.now();
    await w1.node.dial(m1.addr);
    await w2.node.dial(m1.addr);
    await waitFor(() => m1.guard.isAuthenticatedPeer(w1.node.peerId.toString()) && m1.guard.isAuthenticatedPeer(w2.node.peerId.toString())
      && w1.guard.isAuthenticatedPeer(m1.node.peerId.toString()) && w2.guard.isAuthenticatedPeer(m1.node.peerId.toString()), 'authenticated');

    const authenticated = performance.now() - t0;
    const knowsAll = (x: HostGossip) => ['m1', 'w1', 'w2'].every((n) => x.directory.alive(n));
    await waitFor(() => g.every(knowsAll), 'every directory holds all three hosts', 15_000);
    const converged = performance.now() - t0;
    console.log(`host gossip: 3 directories converged ${converged.toFixed(0)} ms after the first dial (connections authenticated after ${authenticated.toFixed(0)} ms; period ${periodMs} ms)`);

    expect(gw2.directory.forwarding('netA').map((e) => [e.hostAddr, e.taskAddr]).sort()).toEqual([
      ['192.168.50.1', '10.10.0.2'], ['192.168.50.2', '10.10.0.3'], ['192.168.50.2', '10.10.0.4'],
    ]);
    expect(gm1.directory.forwarding('netB').map((e) => [e.hostAddr, e.taskAddr]).sort()).toEqual([
      ['192.168.50.2', '10.20.0.2'], ['192.168.50.3', '10.20.0.3'],
    ]);
    expect(gw1.directory.forwarding('netB')).toEqual([{ hostAddr: '192.168.50.3', taskAddr: '10.20.0.3', node: 'w2' }]);
    expect(gw2.directory.get('w1')!.announcement.role).toBe('worker');

    // A change reaches the others (w2 through m1) well before the next periodic announcement would.
    let changedAtW2 = 0;
    gw2.directory.onChange(() => { changedAtW2++; });
    const t1 = performance.now();
    gw1.setLocal({ netA: ['10.10.0.3'], netB: ['10.20.0.2', '10.20.0.9'] });
    const seen = (x: HostGossip) => x.directory.forwarding('netB').some((e) => e.taskAddr === '10.20.0.9') && x.directory.forwarding('netA').filter((e) => e.node === 'w1').length === 1;
    await waitFor(() => seen(gm1), 'w1\'s change at m1', 10_000);
    const atM1 = performance.now() - t1;
    await waitFor(() => seen(gw2), 'w1\'s change at w2 (through m1)', 10_000);
    const atW2 = performance.now() - t1;
    // The directory's heardAt is Date.now() (system clock): at w1 when it published, at w2 when applied.
    const wire = gw2.directory.get('w1')!.heardAt - gw1.directory.get('w1')!.heardAt;
    console.log(`host gossip: a change reached m1 in ${atM1.toFixed(0)} ms, w2 (through m1) in ${atW2.toFixed(0)} ms ` +
      `(at most one announcement per 100 ms: ${wire} ms from w1's announcement to w2's directory)`);
    await waitFor(() => changedAtW2 > 0, 'w2\'s directory to tell of the change');

    // A large announcement (near the 1 MiB bound) still travels: 50,000 addresses on 500 networks.
    const big: Record<string, string[]> = {};
    for (let i = 0; i < 50_000; i++) (big[`net${i % 500}`] ??= []).push(`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
    const t3 = performance.now();
    gw1.setLocal(big);
    // On a loaded machine w1 can expire at the others while its large announcement is on the way
    // (expireMs is 1 s here): absent is "not yet", and its next announcement brings it back.
    const bigAt = (x: HostGossip) => Object.keys(x.directory.get('w1')?.announcement.nets ?? {}).length === 500;
    await waitFor(() => bigAt(gm1) && bigAt(gw2), 'the large announcement at m1 and w2', 10_000);
    console.log(`host gossip: an announcement of 50,000 addresses (${encodeAnnouncement(gw1.directory.get('w1')!.announcement).length} bytes) reached both in ${(performance.now() - t3).toFixed(0)} ms`);
    expect(gw2.directory.forwarding('net7').length).toBe(100);
    gw1.setLocal({ netB: ['10.20.0.2'] });
    await waitFor(() => [gm1, gw2].every((x) => x.directory.forwarding('net7').length === 0), 'the large announcement replaced');

    // w2 stops: it expires from the others' directories within expireMs (5 periods) and a sweep.
    const t2 = performance.now();
    gw2.stop();
    await w2.stop();
    const gone = (x: HostGossip) => x.directory.get('w2') === undefined;
    await waitFor(() => gone(gm1) && gone(gw1), 'w2 expired at m1 and w1', 10_000);
    const expired = performance.now() - t2;
    console.log(`host gossip: a stopped host left the other directories after ${expired.toFixed(0)} ms (expireMs ${5 * periodMs})`);
    expect(expired).toBeGreaterThan(5 * periodMs - periodMs - 50); // not before it could have expired
    expect(gm1.directory.forwarding('netB')).toEqual([{ hostAddr: '192.168.50.2', taskAddr: '10.20.0.2', node: 'w1' }]);
    expect(gw1.directory.alive('m1')).toBe(true);

    for (const x of [gm1, gw1]) {
      const s = x.stats();
      expect(s.dropped.signerMismatch + s.dropped.malformed + s.dropped.unknownSigner + s.dropped.unauthenticatedRelay).toBe(0);
      expect(s.applied).toBeGreaterThan(0);
      console.log(`host gossip stats: ${JSON.stringify(s)}`);
    }
  }, 60_000);
});

describe('host gossip when gossip trust comes late', () => {
  // A peer that reads our first gossipsub RPC (our subscriptions) before it trusts us drops it and
  // never learns that we subscribe. Here trust comes 1.2 s after the connection, so both first
  // RPCs are dropped; the resent subscription repairs it.
  test('subscriptions dropped before authentication are resent, and the hosts hear each other', async () => {
    const cluster = await testCluster();
    const trustAfter = Date.now() + 1200;
    const late = { gossipTrust: (_p: string, authenticated: boolean) => authenticated && Date.now() > trustAfter };
    const m1 = await testNode(cluster, 'm1', 'manager', late);
    const w1 = await testNode(cluster, 'w1', 'worker', late);
    started.push(m1, w1);
    const nodeOf = new Map([m1, w1].map((n) => [n.identity.peerId, n.identity.nodeId]));
    const g = [m1, w1].map((n) => {
      const x = new HostGossip({
        node: n.node, nodeId: n.identity.nodeId, role: n.identity.role, addr: '192.168.50.9', periodMs: 200,
        nodeOfPeer: (p) => nodeOf.get(p), isAuthenticated: (p) => n.guard.isAuthenticatedPeer(p),
      });
      gossips.push(x);
      x.start();
      return x;
    });
    const t0 = performance.now();
    await w1.node.dial(m1.addr);
    await waitFor(() => g.every((x) => x.directory.alive('m1') && x.directory.alive('w1')), 'both directories hold both hosts', 15_000);
    console.log(`host gossip: with trust 1.2 s late, converged ${(performance.now() - t0).toFixed(0)} ms after the dial; ` +
      `subscriptions resent: ${g.map((x) => x.stats().resubscribed).join('/')}`);
    expect(g.every((x) => x.stats().resubscribed >= 1)).toBe(true);
    expect(g.every((x) => x.stats().topicPeers === 1)).toBe(true);
  }, 30_000);
});
