import { afterEach, describe, expect, test } from 'bun:test';
import { type NodeIdentity, issueNodeCert, RootCA } from '../manager/ca/index.ts';
import type { NodeRole } from '../types/objects.ts';
import { PROTOCOLS } from './protocols.ts';
import { RenewalError, requestRenewal, serveRenewal } from './renew.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

const DAY = 24 * 3600 * 1000;

describe('certificate renewal', () => {
  test('a node renews through a manager, takes its new role, and presents the new certificate to its peers', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    started.push(m1, w1);
    const roles = new Map<string, NodeRole>();
    await serveRenewal(m1.guard, async (peer, publicKey) =>
      ({ identity: await issueNodeCert(cluster.ca, { nodeId: peer.nodeId, role: roles.get(peer.nodeId) ?? peer.role, clusterId: cluster.clusterId, publicKey, lifetimeMs: 30 * DAY }) }));
    const seen: NodeIdentity[] = [];
    await m1.guard.handle(PROTOCOLS.dispatcher, ({ peer }) => { seen.push(peer); });
    await m1.guard.handle(PROTOCOLS.raft, ({ peer }) => { seen.push(peer); });

    const { connection } = await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
    await expect(w1.guard.open(m1.addr, PROTOCOLS.raft)).rejects.toThrow(/this node is a worker/);

    roles.set('w1', 'manager'); // promoted: takes effect through renewal
    const creds = { clusterId: cluster.clusterId, trust: cluster.ca.trust, identity: w1.identity };
    const { identity: renewed } = await requestRenewal(w1.guard, m1.addr, creds);
    expect(renewed).toMatchObject({ nodeId: 'w1', role: 'manager', peerId: w1.node.peerId.toString() });
    expect(renewed.notAfter).toBeLessThan(w1.identity.notAfter);

    w1.identity = renewed;
    expect(await w1.guard.reauthenticate()).toBe(1);
    const m1side = m1.node.getConnections(w1.node.peerId).find((c) => m1.guard.peerOf(c) !== null);
    expect(m1side && m1.guard.peerOf(m1side)?.role).toBe('manager');
    await w1.guard.open(m1.addr, PROTOCOLS.raft);
    await waitFor(() => seen.some((p) => p.role === 'manager' && p.nodeId === 'w1'), 'raft served to the promoted node');
    expect(connection.status).toBe('open'); // the same connection carried on
  });

  test('a refusal and a certificate for another node are errors that keep the current certificate', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    started.push(m1, w1);
    let mode: 'refuse' | 'other' = 'refuse';
    await serveRenewal(m1.guard, async (peer, publicKey) => {
      if (mode === 'refuse') throw new Error(`node ${peer.nodeId} is being removed`);
      return { identity: await issueNodeCert(cluster.ca, { nodeId: 'w7', role: 'worker', clusterId: cluster.clusterId, publicKey }) };
    });
    const creds = { clusterId: cluster.clusterId, trust: cluster.ca.trust, identity: w1.identity };
    await expect(requestRenewal(w1.guard, m1.addr, creds)).rejects.toThrow(/refused to renew this node's certificate: node w1 is being removed/);
    mode = 'other';
    const err = await requestRenewal(w1.guard, m1.addr, creds).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RenewalError);
    expect((err as Error).message).toMatch(/for node w7, but this is node w1; keeping the current certificate/);
  });

  test('during a root rotation the manager hands over both roots; roots sharing none with those trusted are refused', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    started.push(m1, w1);
    const next = await RootCA.create({ clusterId: cluster.clusterId });
    const bridge = (await cluster.ca.crossSign(next.certificate)).toString('pem');
    let roots = cluster.ca.trust.pem + '\n' + next.trust.pem;
    await serveRenewal(m1.guard, async (peer, publicKey) => ({
      identity: await issueNodeCert(next, { nodeId: peer.nodeId, role: peer.role, clusterId: cluster.clusterId, publicKey, intermediatePem: bridge }),
      trustPem: roots,
    }));
    const creds = { clusterId: cluster.clusterId, trust: cluster.ca.trust, identity: w1.identity };
    const { identity, trust } = await requestRenewal(w1.guard, m1.addr, creds);
    expect(trust.digests).toEqual([cluster.ca.trust.digest, next.trust.digest]);
    expect(identity.certPem).toContain(bridge.split('\n')[1]!);
    // A manager offering only a root this node never trusted is not followed.
    roots = (await RootCA.create()).trust.pem;
    await expect(requestRenewal(w1.guard, m1.addr, creds)).rejects.toThrow(/share none with those this node trusts/);
  });
});
