import { afterEach, describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { issueServerCertFor } from '../manager/ca/client-cert.ts';
import { RootCA } from '../manager/ca/index.ts';
import { x509 } from '../manager/ca/x509.ts';
import { requestServerCert, ServerCertError, serveServerCert } from './server-cert.ts';
import { type TestNode, testCluster, testNode } from './testkit.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

const spki = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;

describe('server certificates for a worker\'s metrics listener', () => {
  test('a worker gets one for its own key and the names the manager allows; the manager sees who asks', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    started.push(m1, w1);
    const seen: string[] = [];
    await serveServerCert(m1.guard, async (peer, req) => {
      seen.push(peer.nodeId);
      const hosts = req.hosts.filter((h) => h !== 'evil.example');
      return { certPem: (await issueServerCertFor(cluster.ca, { clusterId: cluster.clusterId, publicKeyPem: req.publicKey, hosts })).certPem, hosts };
    });
    const creds = { clusterId: cluster.clusterId, trust: cluster.ca.trust, identity: w1.identity };
    const key = spki();
    const got = await requestServerCert(w1.guard, m1.addr, creds, { publicKey: key, hosts: ['10.0.0.7', 'w1.example', 'evil.example'] });
    expect(seen).toEqual(['w1']);
    expect(got.hosts).toEqual(['10.0.0.7', 'w1.example']);
    const cert = new x509.X509Certificate(got.certPem);
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => `${n.type}:${n.value}`);
    expect(names).toEqual(['ip:10.0.0.7', 'dns:w1.example']);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(got.notAfter).toBeGreaterThan(Date.now());
  });

  test('refused, for another key, or from another CA: an error, no certificate', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    started.push(m1, w1);
    const other = await RootCA.create();
    let mode: 'refuse' | 'other-key' | 'other-ca' = 'refuse';
    await serveServerCert(m1.guard, async (peer, req) => {
      if (mode === 'refuse') throw new Error(`node ${peer.nodeId} was removed from the cluster`);
      const publicKeyPem = mode === 'other-key' ? spki() : req.publicKey;
      return { certPem: (await issueServerCertFor(mode === 'other-ca' ? other : cluster.ca, { clusterId: cluster.clusterId, publicKeyPem, hosts: req.hosts })).certPem, hosts: req.hosts };
    });
    const creds = { clusterId: cluster.clusterId, trust: cluster.ca.trust, identity: w1.identity };
    const ask = () => requestServerCert(w1.guard, m1.addr, creds, { publicKey: spki(), hosts: ['127.0.0.1'] });
    await expect(ask()).rejects.toThrow(/refused a server certificate: node w1 was removed from the cluster/);
    mode = 'other-key';
    await expect(ask()).rejects.toThrow(/is not for the key this node sent/);
    mode = 'other-ca';
    const err = await ask().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerCertError);
    expect((err as Error).message).toMatch(/not signed by this cluster's root CA/);
  });
});
