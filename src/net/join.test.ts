import { afterEach, describe, expect, test } from 'bun:test';
import { JoinTokenError, JoinTokens, type RootCA, formatJoinToken, issueNodeCert, localSigner, parseJoinToken } from '../manager/ca/index.ts';
import { AuthGuard } from './auth.ts';
import { JoinError, type JoinAnswer, managerAnswer, requestJoin, serveJoin } from './join.ts';
import { PROTOCOLS } from './protocols.ts';
import { type TestCluster, type TestNode, bareNode, testCluster, testNode } from './testkit.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function manager(cluster: TestCluster, answer?: (tokens: JoinTokens, m: TestNode) => Parameters<typeof serveJoin>[1]['answer']) {
  const m = await testNode(cluster, 'm1', 'manager');
  cleanups.push(() => m.stop());
  const tokens = new JoinTokens(cluster.ca.trust.digest);
  let n = 0;
  const admission = () => ({ signer: localSigner(cluster.ca), digest: cluster.ca.trust.digest, trustPem: cluster.ca.trust.pem, clusterId: cluster.clusterId, tokens, nodeId: () => `n${++n}` });
  await serveJoin(m.node, { answer: answer?.(tokens, m) ?? managerAnswer(admission, () => m.identity) });
  await m.guard.handle(PROTOCOLS.dispatcher, () => {});
  return { m, tokens };
}

async function joiner() {
  const j = await bareNode();
  cleanups.push(() => j.stop());
  return j;
}

describe('joining with a token', () => {
  test('a worker token gets a worker certificate, and the new node then authenticates', async () => {
    const cluster = await testCluster();
    const { m, tokens } = await manager(cluster);
    const j = await joiner();
    const joined = await requestJoin(j.node, m.addr, tokens.token('worker'));
    expect(joined.identity).toMatchObject({ nodeId: 'n1', role: 'worker', clusterId: 'c1', peerId: j.node.peerId.toString() });
    expect(joined.manager.nodeId).toBe('m1');
    expect(joined.trust.digest).toBe(cluster.ca.trust.digest);

    const guard = new AuthGuard(j.node, { credentials: () => ({ clusterId: joined.clusterId, trust: joined.trust, identity: joined.identity }) });
    await guard.start();
    cleanups.push(() => guard.stop());
    const { peer } = await guard.open(m.addr, PROTOCOLS.dispatcher);
    expect(peer.nodeId).toBe('m1');
  });

  test('a manager token gets a manager certificate; a rotated token is refused with what to do', async () => {
    const cluster = await testCluster();
    const { m, tokens } = await manager(cluster);
    const j = await joiner();
    expect((await requestJoin(j.node, m.addr, tokens.token('manager'))).identity.role).toBe('manager');
    const old = tokens.token('worker');
    tokens.rotate('worker');
    const j2 = await joiner();
    await expect(requestJoin(j2.node, m.addr, old)).rejects.toThrow(/refused to admit this node: the token is not valid for this cluster any more .*shoal cluster join-token/);
  });

  test('a token of another cluster is refused by the manager', async () => {
    const cluster = await testCluster();
    const other = await testCluster('c2');
    const { m } = await manager(cluster);
    const j = await joiner();
    const token = new JoinTokens(other.ca.trust.digest).token('worker');
    const err = await requestJoin(j.node, m.addr, token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JoinError);
    expect((err as Error).message).toMatch(/the token is for a cluster with another root CA than this one/);
  });

  test('a manager offering a root CA that does not match the token digest is not trusted', async () => {
    const cluster = await testCluster();
    const impostor = await testCluster();
    // The impostor holds a valid-looking token secret but answers with its own root.
    const { m } = await manager(impostor, (tokens, self) => managerAnswer(() => ({ signer: localSigner(impostor.ca), digest: impostor.ca.trust.digest, trustPem: impostor.ca.trust.pem, clusterId: impostor.clusterId, tokens }), () => self.identity));
    const j = await joiner();
    const secret = parseJoinToken(new JoinTokens(impostor.ca.trust.digest).token('worker')).secret;
    const token = formatJoinToken(cluster.ca.trust.digest, secret);
    const err = await requestJoin(j.node, m.addr, token).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/refused to admit this node: the token is for a cluster with another root CA/);

    // Same impostor, but it skips its own checks and offers its root: the joiner's digest check catches it.
    const lying = await manager(impostor, (_tokens, self) => async () => ({
      clusterId: impostor.clusterId, rootCert: impostor.ca.trust.pem, managerCert: self.identity.certPem,
      cert: (await issueNodeCert(impostor.ca, { nodeId: 'x', role: 'worker', clusterId: impostor.clusterId, publicKey: j.node.peerId.publicKey!.raw })).certPem,
    }));
    const err2 = await requestJoin(j.node, lying.m.addr, token).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(JoinError);
    expect((err2 as Error).message).toMatch(/offered a root CA with digest \w+, but the token expects \w+: the token belongs to another cluster/);
  });

  test('a forged certificate (right root offered, signed by another key) is refused by the joiner', async () => {
    const cluster = await testCluster();
    const forger = await testCluster();
    const forge = (ca: RootCA, key: Uint8Array, role: 'worker' | 'manager') => issueNodeCert(ca, { nodeId: 'f', role, clusterId: 'c1', publicKey: key });
    const j = await joiner();
    const ownKey = j.node.peerId.publicKey!.raw;
    // The issued certificate is forged.
    const a = await manager(cluster, (_t, self) => async (): Promise<JoinAnswer> => ({
      clusterId: 'c1', rootCert: cluster.ca.trust.pem, managerCert: self.identity.certPem, cert: (await forge(forger.ca, ownKey, 'worker')).certPem,
    }));
    const token = new JoinTokens(cluster.ca.trust.digest).token('worker');
    await expect(requestJoin(j.node, a.m.addr, token)).rejects.toThrow(/the certificate issued by the manager at .* is not signed by this cluster's root CA .*; refusing it/);
    // The manager's own certificate is forged (it is not a manager of this cluster).
    const b = await manager(forger, (_t, self) => async (): Promise<JoinAnswer> => ({
      clusterId: 'c1', rootCert: cluster.ca.trust.pem, managerCert: self.identity.certPem, cert: (await forge(cluster.ca, ownKey, 'worker')).certPem,
    }));
    await expect(requestJoin(j.node, b.m.addr, token)).rejects.toThrow(/the certificate of the manager at .* is not signed by this cluster's root CA .*; refusing to join through it/);
  });

  test('a malformed token fails before anything is sent', async () => {
    const j = await joiner();
    const { multiaddr } = await import('@multiformats/multiaddr');
    await expect(requestJoin(j.node, multiaddr('/ip4/127.0.0.1/tcp/9'), 'SWMTKN-1-abc')).rejects.toBeInstanceOf(JoinTokenError);
  });
});
