import { describe, expect, test } from 'bun:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import '@libp2p/tls'; // sets @peculiar/x509's global crypto provider: the CA must not depend on it
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import { ClusterTrust, issueNodeCert, RootCA, verifyNodeCert } from './index.ts';
import { CA_ALGORITHM, x509 } from './x509.ts';

async function nodeKey(): Promise<Uint8Array> {
  return (await generateKeyPair('Ed25519')).publicKey.raw;
}

describe('root rotation', () => {
  test('a certificate from the new root, with the cross-signed root, verifies against the old root, the new root and both', async () => {
    const oldRoot = await RootCA.create({ clusterId: 'c1' });
    const newRoot = await RootCA.create({ clusterId: 'c1' });
    const cross = await oldRoot.crossSign(newRoot.certificate);
    expect(cross.subject).toBe(newRoot.certificate.subject);
    expect(cross.issuer).toBe(oldRoot.certificate.subject);
    const key = await nodeKey();
    const issued = await issueNodeCert(newRoot, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: key, intermediatePem: cross.toString('pem') });
    const both = await ClusterTrust.fromPem(oldRoot.trust.pem + newRoot.trust.pem);
    expect(both.roots).toHaveLength(2);
    expect(both.digest).toBe(oldRoot.trust.digest);
    for (const trust of [oldRoot.trust, newRoot.trust, both]) {
      const id = await verifyNodeCert(issued.certPem, { trust, clusterId: 'c1', peerPublicKey: key });
      expect(id.nodeId).toBe('n1');
      // The chain travels on: whoever presents it again presents the intermediate too.
      expect(id.certPem).toContain(cross.toString('pem').split('\n')[1]!);
    }
    // Without the intermediate, a node trusting only the old root refuses it.
    const bare = await issueNodeCert(newRoot, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: key });
    await expect(verifyNodeCert(bare.certPem, { trust: oldRoot.trust, clusterId: 'c1' })).rejects.toThrow(/not signed by this cluster's root CA/);
    // An old-root certificate still verifies while both are trusted, not once only the new one is.
    const old = await issueNodeCert(oldRoot, { nodeId: 'n2', role: 'manager', clusterId: 'c1', publicKey: key });
    expect((await verifyNodeCert(old.certPem, { trust: both, clusterId: 'c1' })).nodeId).toBe('n2');
    await expect(verifyNodeCert(old.certPem, { trust: newRoot.trust, clusterId: 'c1' })).rejects.toThrow(/not signed by this cluster's root CA/);
  });

  test('an intermediate signed by a stranger, or a leaf as intermediate, does not make a chain', async () => {
    const oldRoot = await RootCA.create({ clusterId: 'c1' });
    const newRoot = await RootCA.create({ clusterId: 'c1' });
    const stranger = await RootCA.create({ clusterId: 'c1' });
    const forgedBridge = await stranger.crossSign(newRoot.certificate);
    const key = await nodeKey();
    const issued = await issueNodeCert(newRoot, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: key, intermediatePem: forgedBridge.toString('pem') });
    await expect(verifyNodeCert(issued.certPem, { trust: oldRoot.trust, clusterId: 'c1' })).rejects.toThrow(/not signed by this cluster's root CA/);
    const leaf = await issueNodeCert(oldRoot, { nodeId: 'n2', role: 'worker', clusterId: 'c1', publicKey: key });
    const chained = await issueNodeCert(newRoot, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: key, intermediatePem: leaf.certPem });
    await expect(verifyNodeCert(chained.certPem, { trust: oldRoot.trust, clusterId: 'c1' })).rejects.toThrow(/not signed by this cluster's root CA/);
    const three = issued.certPem + leaf.certPem;
    await expect(verifyNodeCert(three, { trust: oldRoot.trust, clusterId: 'c1' })).rejects.toThrow(/at most 1 is accepted/);
  });

  test('a given root must be one certificate whose key matches, current', async () => {
    const a = await RootCA.create();
    const b = await RootCA.create();
    const { keyPem } = await b.toPem();
    const opts = { certWhat: 'Spec.CAConfig.SigningCACert', keyWhat: 'Spec.CAConfig.SigningCAKey' };
    await expect(RootCA.fromPem(a.trust.pem, keyPem, opts)).rejects.toThrow('Spec.CAConfig.SigningCAKey does not belong to Spec.CAConfig.SigningCACert');
    await expect(RootCA.fromPem(a.trust.pem + b.trust.pem, keyPem, opts)).rejects.toThrow('Spec.CAConfig.SigningCACert holds 2 certificates');
    const expired = await RootCA.create({ now: Date.now() - 3 * 86400e3, lifetimeMs: 86400e3 });
    const e = await expired.toPem();
    await expect(RootCA.fromPem(e.certPem, e.keyPem, opts)).rejects.toThrow(/Spec.CAConfig.SigningCACert is valid from .* not now/);
  });

  test('a certificate from an external CA (another key, the peer id as DNS name) binds that peer; one naming no peer is refused', async () => {
    const root = await RootCA.create({ clusterId: 'c1' });
    const node = await generateKeyPair('Ed25519');
    const peerId = peerIdFromPublicKey(node.publicKey).toString();
    const throwaway = (await crypto.subtle.generateKey(CA_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const make = (names: { type: 'dns'; value: string }[]) => x509.X509CertificateGenerator.create({
      serialNumber: '0b', subject: 'CN=n1, OU=worker, O=c1', issuer: root.certificate.subject,
      notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86400e3),
      publicKey: throwaway.publicKey, signingKey: root.signingKey, signingAlgorithm: CA_ALGORITHM,
      extensions: [new x509.SubjectAlternativeNameExtension(names)],
    }, crypto);
    const good = await make([{ type: 'dns', value: peerId }]);
    const id = await verifyNodeCert(good.toString('pem'), { trust: root.trust, clusterId: 'c1', peerPublicKey: node.publicKey.raw });
    expect(id.peerId).toBe(peerId);
    const other = await generateKeyPair('Ed25519');
    await expect(verifyNodeCert(good.toString('pem'), { trust: root.trust, clusterId: 'c1', peerPublicKey: other.publicKey.raw })).rejects.toThrow(/but was presented by peer/);
    const none = await make([{ type: 'dns', value: 'node1.example' }]);
    await expect(verifyNodeCert(none.toString('pem'), { trust: root.trust, clusterId: 'c1' })).rejects.toThrow(/neither carries an Ed25519 key nor names a peer id/);
  });
});
