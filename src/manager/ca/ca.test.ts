import { describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import '@libp2p/tls'; // sets @peculiar/x509's global crypto provider: the CA must not depend on it
import { CertificateError, ClusterTrust, JoinTokenError, JoinTokens, NODE_CERT_LIFETIME_MS, RootCA, issueNodeCert, parseJoinToken, renewalTime, verifyNodeCert } from './index.ts';
import { CA_ALGORITHM, x509 } from './x509.ts';

const DAY = 24 * 3600 * 1000;

async function nodeKey(): Promise<Uint8Array> {
  return (await generateKeyPair('Ed25519')).publicKey.raw;
}

describe('cluster CA', () => {
  test('a node certificate binds node id, peer id, role and cluster, and verifies against the pinned root', async () => {
    const ca = await RootCA.create({ clusterId: 'c1' });
    const key = await nodeKey();
    const issued = await issueNodeCert(ca, { nodeId: 'node1', role: 'worker', clusterId: 'c1', publicKey: key });
    expect(issued.notAfter - issued.notBefore).toBeGreaterThanOrEqual(NODE_CERT_LIFETIME_MS);
    const trust = await ClusterTrust.fromPem(ca.trust.pem);
    const id = await verifyNodeCert(issued.certPem, { trust, clusterId: 'c1', peerPublicKey: key });
    expect(id).toMatchObject({ nodeId: 'node1', role: 'worker', clusterId: 'c1', peerId: issued.peerId });
    expect(id.peerId).toStartWith('12D3Koo');
  });

  test('the root is ECDSA P-256 for 20 years and its digest is stable', async () => {
    const ca = await RootCA.create();
    const alg = ca.certificate.publicKey.algorithm as { namedCurve?: string };
    expect(alg.namedCurve).toBe('P-256');
    const years = (ca.certificate.notAfter.getTime() - ca.certificate.notBefore.getTime()) / (365 * DAY);
    expect(Math.round(years)).toBe(20);
    expect(ca.trust.digest).toMatch(/^[0-9a-z]{50}$/);
    expect((await ClusterTrust.fromPem(ca.trust.pem)).digest).toBe(ca.trust.digest);
    const { certPem, keyPem } = await ca.toPem();
    const again = await RootCA.fromPem(certPem, keyPem);
    expect(again.trust.digest).toBe(ca.trust.digest);
  });

  test('refusals: another root, another cluster, another key, expired, not yet valid, wrong role', async () => {
    const ca = await RootCA.create();
    const stranger = await RootCA.create();
    const key = await nodeKey();
    const other = await nodeKey();
    const now = Date.now();
    const good = await issueNodeCert(ca, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: key, now });
    const forged = await issueNodeCert(stranger, { nodeId: 'n1', role: 'manager', clusterId: 'c1', publicKey: key, now });
    const opts = { trust: ca.trust, clusterId: 'c1', peerPublicKey: key, now };
    await expect(verifyNodeCert(forged.certPem, opts)).rejects.toThrow(/not signed by this cluster's root CA/);
    await expect(verifyNodeCert(good.certPem, { ...opts, clusterId: 'c2' })).rejects.toThrow(/belongs to cluster c1, not to this cluster \(c2\)/);
    await expect(verifyNodeCert(good.certPem, { ...opts, peerPublicKey: other })).rejects.toThrow(/but was presented by peer/);
    await expect(verifyNodeCert(good.certPem, { ...opts, now: now + 91 * DAY })).rejects.toThrow(/expired/);
    const future = await issueNodeCert(ca, { nodeId: 'n1', role: 'worker', clusterId: 'c1', publicKey: key, now: now + DAY });
    await expect(verifyNodeCert(future.certPem, opts)).rejects.toThrow(/not valid before/);
    await expect(verifyNodeCert(good.certPem, { ...opts, roles: ['manager'] })).rejects.toThrow(/is for a worker; only manager/);
    await expect(verifyNodeCert('garbage', opts)).rejects.toBeInstanceOf(CertificateError);
  });

  test('a certificate signed by a key that only copies the root subject is refused', async () => {
    const ca = await RootCA.create({ clusterId: 'c1' });
    const fakeKeys = (await crypto.subtle.generateKey(CA_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const key = await nodeKey();
    const fake = await x509.X509CertificateGenerator.create({
      serialNumber: '0a', subject: 'CN=n1, OU=manager, O=c1', issuer: ca.certificate.subject,
      notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY),
      publicKey: await crypto.subtle.importKey('raw', new Uint8Array(key), { name: 'Ed25519' }, true, ['verify']),
      signingKey: fakeKeys.privateKey, signingAlgorithm: CA_ALGORITHM,
    }, crypto);
    await expect(verifyNodeCert(fake.toString('pem'), { trust: ca.trust, clusterId: 'c1' })).rejects.toThrow(/not signed by this cluster's root CA/);
  });

  test('an external CA: SEC1 or PKCS#8 key, must match its certificate, must be ECDSA P-256', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keys = {
      privateKey: await crypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), CA_ALGORITHM, true, ['sign']),
      publicKey: await crypto.subtle.importKey('spki', publicKey.export({ format: 'der', type: 'spki' }), CA_ALGORITHM, true, ['verify']),
    };
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=corp root', notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY),
      keys, signingAlgorithm: CA_ALGORITHM, extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
    }, crypto);
    const sec1 = privateKey.export({ format: 'pem', type: 'sec1' }) as string;
    const ca = await RootCA.fromPem(cert.toString('pem'), sec1);
    const key = await nodeKey();
    const issued = await issueNodeCert(ca, { nodeId: 'n1', role: 'manager', clusterId: 'c1', publicKey: key });
    expect((await verifyNodeCert(issued.certPem, { trust: ca.trust, clusterId: 'c1', peerPublicKey: key })).role).toBe('manager');

    const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    await expect(RootCA.fromPem(cert.toString('pem'), otherKey)).rejects.toThrow(/does not belong to the external CA certificate/);
    await expect(RootCA.fromPem(cert.toString('pem'), 'not a key')).rejects.toThrow(/not a readable PEM private key/);
    await expect(RootCA.fromPem(issued.certPem, sec1)).rejects.toThrow(/not a CA certificate/);
  });

  test('renewal happens between 50 % and 80 % of the lifetime', () => {
    const nb = 1_000_000;
    const na = nb + NODE_CERT_LIFETIME_MS;
    expect(renewalTime(nb, na, () => 0)).toBe(nb + NODE_CERT_LIFETIME_MS * 0.5);
    expect(renewalTime(nb, na, () => 0.999999)).toBeLessThanOrEqual(nb + NODE_CERT_LIFETIME_MS * 0.8);
    expect(renewalTime(nb, na, () => 0.999999)).toBeGreaterThan(nb + NODE_CERT_LIFETIME_MS * 0.79);
  });
});

describe('join tokens', () => {
  test('format, parse, role by secret, rotation', async () => {
    const ca = await RootCA.create();
    const tokens = new JoinTokens(ca.trust.digest);
    const worker = tokens.token('worker');
    expect(worker).toMatch(/^SHOAL-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    const parsed = parseJoinToken(worker);
    expect(parsed.digest).toBe(ca.trust.digest);
    expect(tokens.roleFor(parsed.secret)).toBe('worker');
    expect(tokens.roleFor(parseJoinToken(tokens.token('manager')).secret)).toBe('manager');
    const rotated = tokens.rotate('worker');
    expect(rotated).not.toBe(worker);
    expect(tokens.roleFor(parsed.secret)).toBeNull();
    expect(tokens.roleFor(parseJoinToken(rotated).secret)).toBe('worker');
  });

  test('a malformed token is refused with a message that says what to do', () => {
    expect(() => parseJoinToken('SWMTKN-1-abc-def')).toThrow(JoinTokenError);
    expect(() => parseJoinToken('SHOAL-2-abc')).toThrow(/another token format version/);
    expect(() => parseJoinToken('nonsense')).toThrow(/shoal cluster join-token/);
  });
});
