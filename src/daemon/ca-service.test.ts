import { expect, test } from 'bun:test';
import '@libp2p/tls'; // loads first in the daemon too: x509's global provider must not matter
import { generateKeyPair } from '@libp2p/crypto/keys';
import { ClusterTrust, issueNodeCert, parseJoinToken, RootCA, verifyNodeCert } from '../manager/ca/index.ts';
import { x509 } from '../manager/ca/x509.ts';
import { memoryStore } from '../store/index.ts';
import { ClusterCA, makeClusterIdentity, renewalDelayMs, rotatedToken, tlsInfoOf } from './ca-service.ts';
import { currentCluster, initCluster } from './cluster.ts';

const description = { Hostname: 'h', Platform: { OS: 'linux', Architecture: 'amd64' }, Resources: { NanoCPUs: 1e9, MemoryBytes: 2 ** 30 }, Engine: { EngineVersion: 'test', Plugins: [] } };

test('a cluster gets its CA in the store; joiners are admitted and recorded; rotation and renewal', async () => {
  const store = memoryStore();
  const cluster = await initCluster(store, 'm1', description, undefined, '10.0.0.1:4242');
  expect(cluster.RootCA).toBeUndefined(); // made in the background, after the API is up
  const key = await generateKeyPair('Ed25519');
  const { identity, membership } = await makeClusterIdentity(cluster, 'm1', key.publicKey.raw);
  await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', cluster.ID)!, RootCA: identity.RootCA, JoinTokens: identity.JoinTokens }));
  const trust = await ClusterTrust.fromPem(membership.RootCA);
  const own = await verifyNodeCert(membership.Cert, { trust, clusterId: cluster.ID, roles: ['manager'] });
  expect(own.nodeId).toBe('m1');
  expect(parseJoinToken(identity.JoinTokens.Worker).digest).toBe(trust.digest);

  const ca = new ClusterCA(store, () => own);
  const joiner = await generateKeyPair('Ed25519');
  const token = parseJoinToken(currentCluster(store)!.JoinTokens.Manager);
  const answer = await ca.admit({ digest: token.digest, secret: token.secret, publicKey: joiner.publicKey.raw, advertiseAddr: '10.0.0.2:4242' });
  const issued = await verifyNodeCert(answer.cert, { trust, clusterId: cluster.ID, peerPublicKey: joiner.publicKey.raw });
  expect(issued.role).toBe('manager');
  const node = store.get('nodes', issued.nodeId)!;
  expect(node.Spec.Role).toBe('manager');
  expect(node.ManagerStatus).toEqual({ Leader: false, Reachability: 'unknown', Addr: '10.0.0.2:4242' });

  // A rotated token stops working at once.
  const old = parseJoinToken(currentCluster(store)!.JoinTokens.Worker);
  const rotated = rotatedToken(currentCluster(store)!, 'worker');
  await store.update((tx) => {
    const c = tx.get('clusters', cluster.ID)!;
    tx.update('clusters', { ...c, JoinTokens: { ...c.JoinTokens, Worker: rotated } });
  });
  await expect(ca.admit({ ...old, publicKey: joiner.publicKey.raw })).rejects.toThrow('not valid for this cluster any more');

  // Renewal issues the role the store holds now, and refuses a removed node.
  await store.update((tx) => tx.update('nodes', { ...tx.get('nodes', issued.nodeId)!, Spec: { ...node.Spec, Role: 'worker' } }));
  expect((await ca.renew(issued, joiner.publicKey.raw)).identity.role).toBe('worker');
  await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', cluster.ID)!, RemovedNodes: [issued.nodeId] }));
  await expect(ca.renew(issued, joiner.publicKey.raw)).rejects.toThrow('was removed');
});

test('renewal waits until 50–80 % of the life, at once when that is past', () => {
  const day = 24 * 3600 * 1000;
  expect(renewalDelayMs(0, 90 * day, 0, () => 0)).toBe(45 * day);
  expect(renewalDelayMs(0, 90 * day, 0, () => 0.999999)).toBeLessThanOrEqual(72 * day);
  expect(renewalDelayMs(0, 90 * day, 80 * day, () => 0.5)).toBe(0);
});

test('the lifetime comes from Spec.CAConfig.NodeCertExpiry; issued certificates are recorded in Description.TLSInfo', async () => {
  const store = memoryStore();
  process.env.SHOAL_TEST_MIN_CERT_EXPIRY = '5s';
  try {
    const cluster = await initCluster(store, 'm1', description, { CAConfig: { NodeCertExpiry: 20e9 } }, '10.0.0.1:4242');
    const key = await generateKeyPair('Ed25519');
    const { identity, membership, tlsInfo } = await makeClusterIdentity(cluster, 'm1', key.publicKey.raw);
    await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', cluster.ID)!, RootCA: identity.RootCA, JoinTokens: identity.JoinTokens }));
    const trust = await ClusterTrust.fromPem(membership.RootCA);
    const own = await verifyNodeCert(membership.Cert, { trust, clusterId: cluster.ID });
    // 20 s from its making, started a tenth of that before (not 5 minutes: renewal at 50 % must follow the making).
    expect(own.notAfter - own.notBefore).toBeGreaterThanOrEqual(21_900);
    expect(own.notAfter - own.notBefore).toBeLessThanOrEqual(22_100);
    expect(tlsInfo.CertSerial).toBe(own.serial!);
    expect(tlsInfo.TrustRoot).toBe(membership.RootCA);

    const ca = new ClusterCA(store, () => own);
    const joiner = await generateKeyPair('Ed25519');
    const token = parseJoinToken(currentCluster(store)!.JoinTokens.Worker);
    const answer = await ca.admit({ digest: token.digest, secret: token.secret, publicKey: joiner.publicKey.raw });
    const issued = await verifyNodeCert(answer.cert, { trust, clusterId: cluster.ID });
    expect(store.get('nodes', issued.nodeId)!.Description.TLSInfo).toMatchObject({ CertSerial: issued.serial, CertNotAfter: new Date(issued.notAfter).toISOString() });
    const { identity: renewed } = await ca.renew(issued, joiner.publicKey.raw);
    await Bun.sleep(0); // the record is written after the answer
    expect(store.get('nodes', issued.nodeId)!.Description.TLSInfo!.CertSerial).toBe(renewed.serial!);
    expect(renewed.serial).not.toBe(issued.serial);
    // Without the test-only minimum the setting is out of bounds: the default (90 days) applies.
    delete process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
    const { identity: long } = await ca.renew(issued, joiner.publicKey.raw);
    expect(long.notAfter - Date.now()).toBeGreaterThan(89 * 24 * 3600e3);
  } finally {
    delete process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
  }
});

test("TLSInfo names the issuer as Docker does: its subject and public key as DER, base64", async () => {
  const ca = await RootCA.create({ clusterId: 'c1' });
  const id = await issueNodeCert(ca, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: (await generateKeyPair('Ed25519')).publicKey.raw });
  const info = tlsInfoOf(id, ca.certificate, ca.trust.pem);
  expect(new x509.Name(Buffer.from(info.CertIssuerSubject!, 'base64')).toString()).toBe(ca.certificate.subject);
  expect(Buffer.from(info.CertIssuerPublicKey!, 'base64')).toEqual(Buffer.from(ca.certificate.publicKey.rawData));
});

test('a joiner more than one minor version away from a manager is refused before any certificate; N+1 is admitted', async () => {
  const store = memoryStore();
  const cluster = await initCluster(store, 'm1', { ...description, Engine: { EngineVersion: '0.4.2', Plugins: [] } }, undefined, '10.0.0.1:4242');
  const key = await generateKeyPair('Ed25519');
  const { identity, membership } = await makeClusterIdentity(cluster, 'm1', key.publicKey.raw);
  await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', cluster.ID)!, RootCA: identity.RootCA, JoinTokens: identity.JoinTokens }));
  const own = await verifyNodeCert(membership.Cert, { trust: await ClusterTrust.fromPem(membership.RootCA), clusterId: cluster.ID });
  const ca = new ClusterCA(store, () => own);
  const token = parseJoinToken(identity.JoinTokens.Worker);
  const joiner = await generateKeyPair('Ed25519');
  const ask = (version: string) => ca.admit({ digest: token.digest, secret: token.secret, publicKey: joiner.publicKey.raw, version });
  await expect(ask('0.6.0')).rejects.toThrow('this node runs shoal 0.6.0, which cannot join: it is more than one minor version away from 0.4.2 (manager m1)');
  expect(store.list('nodes')).toHaveLength(1);
  await ask('0.5.0');
  expect(store.list('nodes')).toHaveLength(2);
});
