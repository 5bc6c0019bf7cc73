import { describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { issueApiServerCert, issueClientCert, readClientCert } from './client-cert.ts';
import { issueNodeCert, RootCA } from './index.ts';
import { x509 } from './x509.ts';

const DAY = 24 * 3600 * 1000;
const clientKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;

describe('client certificates', () => {
  test('bind name, role and cluster, and read back from DER as the TLS layer hands them over', async () => {
    const ca = await RootCA.create({ clusterId: 'c1' });
    const now = Math.floor(Date.now() / 1000) * 1000; // certificates keep whole seconds
    const issued = await issueClientCert(ca, { name: 'alice', role: 'read-only', clusterId: 'c1', publicKeyPem: clientKey(), lifetimeMs: 7 * DAY, now });
    expect(issued.notAfter - now).toBe(7 * DAY);
    const der = new Uint8Array(new x509.X509Certificate(issued.certPem).rawData);
    expect(readClientCert(der, { clusterId: 'c1', now })).toEqual({ name: 'alice', role: 'read-only', clusterId: 'c1', serial: issued.serial, notBefore: issued.notBefore, notAfter: issued.notAfter });
    const cert = new x509.X509Certificate(issued.certPem);
    expect(await cert.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true }, crypto)).toBe(true);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
  });

  test('refused: another cluster, expired, a node certificate, a CA', async () => {
    const ca = await RootCA.create({ clusterId: 'c1' });
    const now = Date.now();
    const issued = await issueClientCert(ca, { name: 'bob', role: 'admin', clusterId: 'c1', publicKeyPem: clientKey(), lifetimeMs: DAY, now });
    expect(() => readClientCert(issued.certPem, { clusterId: 'c2', now })).toThrow('belongs to cluster c1, not to this one (c2)');
    expect(() => readClientCert(issued.certPem, { clusterId: 'c1', now: now + 2 * DAY })).toThrow(/of "bob" expired at .*shoal ca client-bundle/);
    const node = await issueNodeCert(ca, { nodeId: 'n1', role: 'manager', clusterId: 'c1', publicKey: (await generateKeyPair('Ed25519')).publicKey.raw });
    expect(() => readClientCert(node.certPem, { clusterId: 'c1' })).toThrow('is not a client bundle (role "manager")');
    expect(() => readClientCert(ca.trust.pem, { clusterId: 'c1' })).toThrow('is a CA certificate');
  });

  test('bad requests name the field', async () => {
    const ca = await RootCA.create({ clusterId: 'c1' });
    const base = { name: 'alice', role: 'admin' as const, clusterId: 'c1', publicKeyPem: clientKey() };
    await expect(issueClientCert(ca, { ...base, name: 'CN=x, OU=admin' })).rejects.toThrow('name "CN=x, OU=admin": expected 1-64 letters');
    await expect(issueClientCert(ca, { ...base, role: 'root' as never })).rejects.toThrow('role "root": expected admin or read-only');
    await expect(issueClientCert(ca, { ...base, publicKeyPem: 'nope' })).rejects.toThrow('PublicKey: expected a PEM "PUBLIC KEY"');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await expect(issueClientCert(ca, { ...base, publicKeyPem: rsa })).rejects.toThrow('PublicKey: not an ECDSA P-256 public key');
    await expect(issueClientCert(ca, { ...base, lifetimeMs: 0 })).rejects.toThrow('expiry: expected a positive duration');
  });

  test('the server certificate names the addresses, for serverAuth only', async () => {
    const ca = await RootCA.create({ clusterId: 'c1' });
    const s = await issueApiServerCert(ca, { clusterId: 'c1', nodeId: 'n1', hosts: ['127.0.0.1', '::1', 'localhost', 'host-a', '127.0.0.1'] });
    const cert = new x509.X509Certificate(s.certPem);
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => `${n.type}:${n.value}`);
    expect(names).toEqual(['ip:127.0.0.1', 'ip:::1', 'dns:localhost', 'dns:host-a']);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(s.keyPem).toStartWith('-----BEGIN PRIVATE KEY-----');
  });
});
