/**
 * Host announcements over gossipsub with 3 hosts on loopback (one process): how long until every
 * directory holds every host, what share of the announcements arrive, and the longest silence
 * between two announcements of one host at another (what liveness has to tolerate), for gossipsub
 * settings that matter with so few peers (below gossipsub's D = 6 / Dlo = 4).
 * Run alone: node_modules/.bin/bun bench/host-gossip.ts [periodMs] [seconds]
 */
import { HOSTS_TOPIC } from '../src/net/host-announcement.ts';
import { HostGossip } from '../src/net/host-gossip.ts';
import type { NetNodeOptions } from '../src/net/node.ts';
import { type TestNode, testCluster, testNode, waitFor } from '../src/net/testkit.ts';

type Topology = 'line' | 'triangle';

async function once(name: string, gossip: NetNodeOptions['gossip'], topology: Topology, periodMs: number, seconds: number, subscribeFirst = false) {
  const cluster = await testCluster();
  const ids = ['m1', 'w1', 'w2'];
  const t: TestNode[] = [];
  for (const id of ids) t.push(await testNode(cluster, id, id === 'm1' ? 'manager' : 'worker', { gossip }));
  const [m1, w1, w2] = t as [TestNode, TestNode, TestNode];
  const gs: HostGossip[] = [];
  try {
    const connect = async () => {
      await w1.node.dial(m1.addr);
      await w2.node.dial(m1.addr);
      if (topology === 'triangle') await w2.node.dial(w1.addr);
      const pairs: [TestNode, TestNode][] = topology === 'triangle' ? [[m1, w1], [m1, w2], [w1, w2]] : [[m1, w1], [m1, w2]];
      await waitFor(() => pairs.every(([a, b]) => a.guard.isAuthenticatedPeer(b.node.peerId.toString()) && b.guard.isAuthenticatedPeer(a.node.peerId.toString())), 'authenticated');
    };
    if (!subscribeFirst) await connect();
    const nodeOf = new Map(t.map((n) => [n.identity.peerId, n.identity.nodeId]));
    // arrivals[receiver][sender] = local times of applied announcements
    const arrivals = ids.map(() => new Map<string, number[]>());
    t.forEach((n, i) => {
      const g = new HostGossip({
        node: n.node, nodeId: ids[i]!, role: i === 0 ? 'manager' : 'worker', addr: `192.168.50.${i + 1}`, periodMs,
        nodeOfPeer: (p) => nodeOf.get(p), isAuthenticated: (p) => n.guard.isAuthenticatedPeer(p),
      });
      g.setLocal({ net: [`10.0.0.${i + 2}`] });
      const seen = new Map<string, number>();
      g.directory.onChange(() => {});
      // Poll the directory for new seqs: what the overlay would see.
      const poll = setInterval(() => {
        for (const h of g.directory.hosts()) {
          if (h.local || seen.get(h.node) === h.seq) continue;
          seen.set(h.node, h.seq);
          const list = arrivals[i]!.get(h.node) ?? [];
          list.push(performance.now());
          arrivals[i]!.set(h.node, list);
        }
      }, 2);
      gs.push(g);
      (g as unknown as { poll: ReturnType<typeof setInterval> }).poll = poll;
    });
    const t0 = performance.now();
    for (const g of gs) g.start();
    if (subscribeFirst) await connect();
    await waitFor(() => gs.every((g) => ids.every((id) => g.directory.alive(id))), 'convergence', 30_000).catch(() => {});
    const converged = gs.every((g) => ids.every((id) => g.directory.alive(id))) ? performance.now() - t0 : NaN;
    const tStart = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    let worstShare = 1;
    let worstGap = 0;
    gs.forEach((g, i) => {
      for (const [sender, times] of arrivals[i]!) {
        const inWindow = times.filter((x) => x >= tStart);
        const expected = (seconds * 1000) / periodMs;
        worstShare = Math.min(worstShare, inWindow.length / expected);
        for (let k = 1; k < inWindow.length; k++) worstGap = Math.max(worstGap, inWindow[k]! - inWindow[k - 1]!);
        void sender;
      }
      if (arrivals[i]!.size < ids.length - 1) worstShare = 0;
    });
    const mesh = t.map((n) => (n.node.services.pubsub as unknown as { getMeshPeers(x: string): string[] }).getMeshPeers(HOSTS_TOPIC).length);
    const failed = gs.reduce((s, g) => s + g.stats().publishFailed, 0);
    console.log(`${name.padEnd(44)} ${topology.padEnd(8)} ${subscribeFirst ? 'subscribed, then connected' : 'connected, then subscribed'} period ${periodMs} ms: converged ${converged.toFixed(0)} ms; ` +
      `worst share of announcements seen ${(worstShare * 100).toFixed(0)} %, longest silence ${worstGap.toFixed(0)} ms; mesh sizes ${mesh.join('/')}; publish failures ${failed}`);
  } finally {
    for (const g of gs) {
      clearInterval((g as unknown as { poll: ReturnType<typeof setInterval> }).poll);
      g.stop();
    }
    await Promise.all(t.map((n) => n.stop().catch(() => {})));
  }
}

const periodMs = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 5);
const variants: [string, NetNodeOptions['gossip']][] = [
  ['node.ts as is (floodPublish, zero-peer publish)', {}],
  ['floodPublish: false', { floodPublish: false }],
  ['allowPublishToZeroTopicPeers: false', { allowPublishToZeroTopicPeers: false }],
  ['floodPublish: false, D 2 / Dlo 1 / Dhi 4', { floodPublish: false, D: 2, Dlo: 1, Dhi: 4, Dscore: 1, Dout: 0 }],
];
const only = process.argv[4];
for (const subscribeFirst of [true, false]) {
  for (const topology of ['line', 'triangle'] as Topology[]) {
    for (const [name, opts] of variants) {
      if (only && !name.startsWith(only)) continue;
      await once(name, opts, topology, periodMs, seconds, subscribeFirst);
    }
  }
}
process.exit(0);
