import { expect, test } from 'bun:test';
import '@libp2p/tls'; // loads first in the daemon too: x509's global provider must not matter
import { generateKeyPair } from '@libp2p/crypto/keys';
import { caEpochOf, ClusterTrust, parseJoinToken, RootCA, verifyNodeCert } from '../manager/ca/index.ts';
import { memoryStore } from '../store/index.ts';
import { issuerKeyOf, planRotation, RotationFinisher } from './ca-rotation.ts';
import { ClusterCA, makeClusterIdentity } from './ca-service.ts';
import { currentCluster, initCluster } from './cluster.ts';

const description = { Hostname: 'h', Platform: { OS: 'linux', Architecture: 'amd64' }, Resources: { NanoCPUs: 1e9, MemoryBytes: 2 ** 30 }, Engine: { EngineVersion: 'test', Plugins: [] } };

async function clusterWithCA() {
  const store = memoryStore();
  const cluster = await initCluster(store, 'm1', description, undefined, '10.0.0.1:4242');
  const key = await generateKeyPair('Ed25519');
  const { identity, membership, tlsInfo } = await makeClusterIdentity(cluster, 'm1', key.publicKey.raw);
  await store.update((tx) => {
    const c = tx.get('clusters', cluster.ID)!;
    tx.update('clusters', { ...c, RootCA: identity.RootCA, JoinTokens: identity.JoinTokens });
    const n = tx.get('nodes', 'm1')!;
    tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: tlsInfo } });
  });
  const own = await verifyNodeCert(membership.Cert, { trust: await ClusterTrust.fromPem(membership.RootCA), clusterId: cluster.ID });
  return { store, clusterId: cluster.ID, key, own, oldTrust: await ClusterTrust.fromPem(membership.RootCA) };
}

test('a rotation: new root cross-signed in the store, certificates from it verify for old and new trust; done once every node moved, tokens take the new digest', async () => {
  const { store, clusterId, key, own, oldTrust } = await clusterWithCA();
  const c0 = currentCluster(store)!;
  expect(await planRotation(c0, { forceRotate: 0, externalCAs: [] })).toBeNull(); // what the CLI sends back asks nothing
  const planned = (await planRotation(c0, { forceRotate: 1, externalCAs: [] }))!;
  expect(planned.CACertHash).toBe(c0.RootCA!.CACertHash);
  expect(planned.LastForcedRotation).toBe(1);
  const rotation = planned.RootRotation!;
  expect(rotation.CACertHash).not.toBe(c0.RootCA!.CACertHash);
  await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', clusterId)!, RootCA: planned }));
  expect(caEpochOf(planned)).toBe(`${c0.RootCA!.CACertHash}>${rotation.CACertHash}`);

  const finisher = new RotationFinisher({ store, log: () => {} });
  try {
    // The manager renews itself: a new-root certificate with the bridge, and both roots to trust.
    const ca = new ClusterCA(store, () => own);
    const { identity, trustPem } = await ca.renew(own, key.publicKey.raw);
    const both = await ClusterTrust.fromPem(trustPem);
    expect(both.digests).toEqual([c0.RootCA!.CACertHash, rotation.CACertHash]);
    await verifyNodeCert(identity.certPem, { trust: oldTrust, clusterId, peerPublicKey: key.publicKey.raw });
    await verifyNodeCert(identity.certPem, { trust: await ClusterTrust.fromPem(rotation.CACert), clusterId });
    // A token of the current root still admits while the rotation runs.
    const token = parseJoinToken(currentCluster(store)!.JoinTokens.Worker);
    const joiner = await generateKeyPair('Ed25519');
    const answer = await ca.admit({ digest: token.digest, secret: token.secret, publicKey: joiner.publicKey.raw });
    expect(answer.rootCert).toBe(trustPem);

    // Every node (the manager and the joiner) holds a new-root certificate: the finisher completes it.
    finisher.start();
    const done = await waitUntil(() => !currentCluster(store)!.RootCA!.RootRotation);
    expect(done).toBe(true);
    const c1 = currentCluster(store)!;
    expect(c1.RootCA!.CACertHash).toBe(rotation.CACertHash);
    expect(c1.RootCA!.CACert).toBe(rotation.CACert);
    expect(parseJoinToken(c1.JoinTokens.Worker).digest).toBe(rotation.CACertHash);
    expect(parseJoinToken(c1.JoinTokens.Worker).secret).toBe(token.secret);
    for (const n of store.list('nodes')) expect(n.Description.TLSInfo?.CertIssuerPublicKey).toBe(issuerKeyOf(rotation.CACert));
    // The old token is refused now.
    await expect(ca.admit({ digest: token.digest, secret: token.secret, publicKey: joiner.publicKey.raw })).rejects.toThrow('another root CA');
  } finally {
    await finisher.stop();
  }
});

test('the finisher waits for a node still on the old root, and skips nodes that are down', async () => {
  const { store, clusterId } = await clusterWithCA();
  const planned = (await planRotation(currentCluster(store)!, { forceRotate: 1, externalCAs: [] }))!;
  await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', clusterId)!, RootCA: planned }));
  const finisher = new RotationFinisher({ store, log: () => {} });
  finisher.start();
  try {
    // m1 still holds its old-root certificate: nothing happens.
    await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', clusterId)!, Spec: { ...tx.get('clusters', clusterId)!.Spec, Labels: { poke: '1' } } }));
    expect(await waitUntil(() => !currentCluster(store)!.RootCA!.RootRotation, 300)).toBe(false);
    // Once it is down, it no longer holds the rotation up.
    await store.update((tx) => {
      const n = tx.get('nodes', 'm1')!;
      tx.update('nodes', { ...n, Status: { ...n.Status, State: 'down' } });
    });
    expect(await waitUntil(() => !currentCluster(store)!.RootCA!.RootRotation)).toBe(true);
  } finally {
    await finisher.stop();
  }
});

test('rotation input: the current root or the one rotated to asks nothing; a key alone, a foreign key, an external root with no server are refused by field', async () => {
  const { store } = await clusterWithCA();
  const c = currentCluster(store)!;
  expect(await planRotation(c, { certPem: c.RootCA!.CACert, externalCAs: [] })).toBeNull();
  const other = await (await RootCA.create()).toPem();
  const third = await (await RootCA.create()).toPem();
  await expect(planRotation(c, { keyPem: other.keyPem, externalCAs: [] })).rejects.toThrow('Spec.CAConfig.SigningCAKey: given without Spec.CAConfig.SigningCACert');
  await expect(planRotation(c, { certPem: other.certPem, keyPem: third.keyPem, externalCAs: [] })).rejects.toThrow('Spec.CAConfig.SigningCAKey does not belong to Spec.CAConfig.SigningCACert');
  await expect(planRotation(c, { certPem: other.certPem, externalCAs: [] })).rejects.toThrow('Spec.CAConfig.SigningCAKey: required with Spec.CAConfig.SigningCACert');
  await expect(planRotation(c, { certPem: 'not pem', keyPem: other.keyPem, externalCAs: [] })).rejects.toThrow(/Spec.CAConfig.SigningCACert/);
  const given = (await planRotation(c, { certPem: other.certPem, keyPem: other.keyPem, externalCAs: [] }))!;
  expect(given.RootRotation!.CACert).toBe(other.certPem);
  expect(await planRotation({ ...c, RootCA: given }, { certPem: other.certPem, externalCAs: [] })).toBeNull();
});

/** Until `cond` holds (true) or `ms` passed (false); the stage reacts to store events on its own. */
async function waitUntil(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}
