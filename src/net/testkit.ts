/** Test helpers: a cluster CA and authenticated libp2p nodes on 127.0.0.1 with OS-chosen ports. */
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { type NodeIdentity, RootCA, issueNodeCert } from '../manager/ca/index.ts';
import type { NodeRole } from '../types/objects.ts';
import { AuthGuard, type AuthGuardOptions } from './auth.ts';
import { type NetNode, type NetNodeOptions, PeerDenyList, createNetNode } from './node.ts';

export interface TestCluster {
  clusterId: string;
  ca: RootCA;
}

export async function testCluster(clusterId = 'c1'): Promise<TestCluster> {
  return { clusterId, ca: await RootCA.create({ clusterId }) };
}

export interface TestNode {
  node: NetNode;
  guard: AuthGuard;
  key: Ed25519PrivateKey;
  identity: NodeIdentity;
  denyList: PeerDenyList;
  refusals: { peerId: string; protocol: string; reason: string }[];
  addr: Multiaddr;
  stop(): Promise<void>;
}

/** A started node with a certificate from `cluster` (whose CA may be a stranger's). */
export async function testNode(
  cluster: TestCluster,
  nodeId: string,
  role: NodeRole,
  extra: Partial<AuthGuardOptions> & {
    trustCluster?: TestCluster;
    gossip?: NetNodeOptions['gossip'];
    liveness?: NetNodeOptions['liveness'];
    /** Overrides gossip trust; `authenticated` is what the guard says (to make trust come late). */
    gossipTrust?: (peerId: string, authenticated: boolean) => boolean;
  } = {},
): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519');
  const identity = await issueNodeCert(cluster.ca, { nodeId, role, clusterId: cluster.clusterId, publicKey: key.publicKey.raw });
  const trusted = extra.trustCluster ?? cluster;
  const denyList = new PeerDenyList();
  let guardRef: AuthGuard | null = null;
  const node = await createNetNode({
    privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], denyList,
    gossipTrust: (p) => {
      const authenticated = guardRef?.isAuthenticatedPeer(p) ?? false;
      return extra.gossipTrust ? extra.gossipTrust(p, authenticated) : authenticated;
    },
    gossip: extra.gossip,
    liveness: extra.liveness,
  });
  const refusals: TestNode['refusals'] = [];
  const guard = new AuthGuard(node, {
    // Read from the returned object, so that a test can swap in a renewed certificate.
    credentials: () => ({ clusterId: trusted.clusterId, trust: trusted.ca.trust, identity: t.identity }),
    denyList,
    onRefused: (e) => refusals.push(e),
    ...extra,
  });
  guardRef = guard;
  await node.start();
  await guard.start();
  const t: TestNode = {
    node, guard, key, identity, denyList, refusals,
    addr: node.getMultiaddrs()[0]!,
    async stop() {
      await guard.stop();
      await node.stop();
    },
  };
  return t;
}

/** A started node with no certificate and no guard: a host about to join. */
export async function bareNode(): Promise<{ node: NetNode; key: Ed25519PrivateKey; stop(): Promise<void> }> {
  const key = await generateKeyPair('Ed25519');
  const node = await createNetNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] });
  await node.start();
  return { node, key, stop: async () => { await node.stop(); } };
}

/** Waits until `cond` holds, polling; fails after `timeoutMs` of wall clock. Never a timed assertion. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
