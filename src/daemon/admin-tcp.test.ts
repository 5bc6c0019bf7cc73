import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { testApi } from '../api/test-helper.ts';
import { issueClientCert, type ClientRole } from '../manager/ca/client-cert.ts';
import { RootCA } from '../manager/ca/index.ts';
import type { MemoryStore } from '../store/index.ts';
import { type AdminTcp, parseTcpAddr, startAdminTcp } from './admin-tcp.ts';

const DAY = 24 * 3600 * 1000;
let store: MemoryStore;
let ca: RootCA;
let clusterId: string;
let server: AdminTcp;
let base: string;
let role: 'manager' | 'worker' = 'manager';
const logged: string[] = [];

beforeAll(async () => {
  const api = testApi();
  await api.init();
  store = api.deps.store;
  ca = await RootCA.create();
  const { certPem, keyPem } = await ca.toPem();
  const c = store.list('clusters')[0]!;
  clusterId = c.ID;
  await store.update((tx) => tx.update('clusters', { ...c, RootCA: { CACert: certPem, CAKey: keyPem, CACertHash: ca.trust.digest }, JoinTokens: { Worker: 'SHOAL-w', Manager: 'SHOAL-m' } }));
  server = startAdminTcp({ addr: '127.0.0.1:0', fetch: (req, env) => api.app.fetch(req, env), store, nodeId: 'n1', role: () => role, identityReady: async () => {}, log: (m) => logged.push(m) });
  await server.ready;
  base = `https://127.0.0.1:${server.address()!.port}`;
});
afterAll(() => server?.stop());

/** A bundle as `shoal ca client-bundle` writes it, from `from` (default the cluster CA). */
async function bundle(name: string, r: ClientRole, opts: { from?: RootCA; now?: number; lifetimeMs?: number; clusterId?: string } = {}) {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const issued = await issueClientCert(opts.from ?? ca, { name, role: r, clusterId: opts.clusterId ?? clusterId, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, now: opts.now, lifetimeMs: opts.lifetimeMs });
  return { serial: issued.serial, tls: { ca: ca.trust.pem, cert: issued.certPem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } };
}

function call(path: string, tls: object, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${path}`, { ...init, tls, keepalive: true } as RequestInit);
}

describe('admin API over TCP', () => {
  test('an admin bundle may do everything and sees the join tokens', async () => {
    const { tls } = await bundle('alice', 'admin');
    expect((await call('/nodes', tls)).status).toBe(200);
    expect(((await (await call('/v1.47/swarm', tls)).json()) as any).JoinTokens).toEqual({ Worker: 'SHOAL-w', Manager: 'SHOAL-m' });
    const r = await call('/services/create', tls, { method: 'POST', body: JSON.stringify({ Name: 'web', TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'] } } }) });
    expect(r.status).toBe(201);
  });

  test('a read-only bundle reads, is refused writes (403 naming the role), sees no tokens', async () => {
    const { tls } = await bundle('bob', 'read-only');
    expect((await call('/nodes', tls)).status).toBe(200);
    expect((await call('/nodes', tls, { method: 'HEAD' })).status).toBe(200);
    const w = await call('/services/create', tls, { method: 'POST', body: '{}' });
    expect(w.status).toBe(403);
    expect(((await w.json()) as any).message).toBe('the client bundle of "bob" has the read-only role: POST /services/create needs an admin bundle');
    expect(((await (await call('/swarm', tls)).json()) as any).JoinTokens).toEqual({ Worker: '', Manager: '' });
  });

  test('refused at the handshake: no certificate, one from another CA, an expired one', async () => {
    await expect(call('/nodes', { ca: ca.trust.pem })).rejects.toThrow();
    const stranger = await bundle('mallory', 'admin', { from: await RootCA.create() });
    await expect(call('/nodes', stranger.tls)).rejects.toThrow();
    const expired = await bundle('old', 'admin', { now: Date.now() - 2 * DAY, lifetimeMs: DAY });
    await expect(call('/nodes', expired.tls)).rejects.toThrow();
    await expect(fetch(base.replace('https', 'http') + '/nodes')).rejects.toThrow(); // no plain HTTP
    // One line for the first refusal (logged after the client saw it fail); the others wait for the next line's count.
    const deadline = Date.now() + 5000;
    while (!logged.some((l) => l.includes('refused a TLS handshake')) && Date.now() < deadline) await Bun.sleep(20);
    expect(logged.filter((l) => /^admin API on TCP: refused a TLS handshake( from 127\.0\.0\.1)?: ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE$/.test(l))).toHaveLength(1);
    expect(logged.filter((l) => l.includes('refused a TLS handshake'))).toHaveLength(1);
  });

  test('a revoked bundle is refused from its next request on (checked per request, not per handshake)', async () => {
    const { tls, serial } = await bundle('carol', 'admin');
    expect((await call('/nodes', tls)).status).toBe(200);
    const c = store.list('clusters')[0]!;
    await store.update((tx) => tx.update('clusters', { ...c, ClientCerts: [{ Serial: serial, Name: 'carol', Role: 'admin', IssuedAt: '', NotAfter: new Date(Date.now() + DAY).toISOString(), RevokedAt: '2026-01-01T00:00:00.000Z' }] }));
    const r = await call('/nodes', tls);
    expect(r.status).toBe(403);
    expect(((await r.json()) as any).message).toBe(`the client bundle of "carol" (serial ${serial}) was revoked at 2026-01-01T00:00:00.000Z`);
  });

  test('a node that stopped being a manager answers 503: it holds no revocations', async () => {
    const { tls } = await bundle('dave', 'admin');
    role = 'worker';
    try {
      const r = await call('/nodes', tls);
      expect(r.status).toBe(503);
      expect(((await r.json()) as any).message).toContain('not a manager any more');
    } finally {
      role = 'manager';
    }
  });
});

test('--listen-tcp addresses', () => {
  expect(parseTcpAddr('0.0.0.0:2376')).toEqual({ host: '0.0.0.0', port: 2376 });
  expect(parseTcpAddr(':2376')).toEqual({ host: '127.0.0.1', port: 2376 });
  expect(parseTcpAddr('[::]:2376')).toEqual({ host: '::', port: 2376 });
  expect(() => parseTcpAddr('2376')).toThrow('--listen-tcp "2376": expected HOST:PORT');
  expect(() => parseTcpAddr('h:70000')).toThrow('expected HOST:PORT');
});

test('the server certificate is renewed in place, and a client certificate is still required after it', async () => {
  const { connect } = await import('node:tls');
  const api = testApi();
  await api.init();
  const c = api.deps.store.list('clusters')[0]!;
  const { certPem, keyPem } = await ca.toPem();
  await api.deps.store.update((tx) => tx.update('clusters', { ...c, RootCA: { CACert: certPem, CAKey: keyPem, CACertHash: ca.trust.digest } }));
  const s = startAdminTcp({ addr: '127.0.0.1:0', fetch: (req, env) => api.app.fetch(req, env), store: api.deps.store, nodeId: 'n1', role: () => 'manager', identityReady: async () => {}, log: () => {}, certLifetimeMs: 6000 }); // renewed at 4 s, 2 s before it expires
  try {
    await s.ready;
    const port = s.address()!.port;
    const { tls } = await bundle('erin', 'admin', { clusterId: c.ID });
    /** The serial of the certificate the server presents now. */
    const served = () => new Promise<string>((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port, ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'localhost' }, () => {
        resolve(sock.getPeerCertificate().serialNumber);
        sock.destroy();
      });
      sock.on('error', reject);
    });
    const first = await served();
    const deadline = Date.now() + 15_000;
    let now = first;
    while (now === first && Date.now() < deadline) {
      await Bun.sleep(100);
      now = await served();
    }
    expect(now).not.toBe(first);
    expect((await fetch(`https://127.0.0.1:${port}/nodes`, { tls } as RequestInit)).status).toBe(200);
    await expect(fetch(`https://127.0.0.1:${port}/nodes`, { tls: { ca: tls.ca } } as RequestInit)).rejects.toThrow();
  } finally {
    await s.stop();
  }
}, 30_000);

describe('a worker serving --metrics-addr (no store: a server certificate from a manager, revocations from its session)', () => {
  test('503 until the revoked bundles are known, never served unchecked; then a bundle is served and a revoked one refused', async () => {
    const { memoryStore } = await import('../store/index.ts');
    const { issueServerCertFor } = await import('../manager/ca/client-cert.ts');
    const { generateKeyPairSync: keys } = await import('node:crypto');
    const asked: string[][] = [];
    const issuedSerials: string[] = [];
    let revoked: Map<string, { serial: string; name: string; at: string }> | null = null;
    const s = startAdminTcp({
      addr: '127.0.0.1:0', fetch: () => new Response('# metrics\n'), store: memoryStore(), nodeId: 'w1', role: () => 'worker', identityReady: async () => {}, log: () => {},
      what: { name: 'metrics', flag: '--metrics-addr' },
      worker: {
        clusterId: () => clusterId,
        revocations: () => revoked,
        // What a manager answers over /shoal/ca/server-cert/1: a certificate for the worker's own key.
        serverCert: async (hosts) => {
          asked.push(hosts);
          const { publicKey, privateKey } = keys('ec', { namedCurve: 'prime256v1' });
          const issued = await issueServerCertFor(ca, { clusterId, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, hosts: ['127.0.0.1'] });
          issuedSerials.push(new (await import('../manager/ca/x509.ts')).x509.X509Certificate(issued.certPem).serialNumber.toLowerCase());
          // The first is renewed at once (the listener's shortest wait, 1 s), the next one a day later.
          return { certPem: issued.certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, caPem: ca.trust.pem, renewInMs: asked.length === 1 ? 0 : DAY };
        },
      },
    });
    try {
      await s.ready;
      expect(asked[0]).toContain('127.0.0.1');
      const url = `https://127.0.0.1:${s.address()!.port}/metrics`;
      const alice = await bundle('alice', 'read-only');
      const early = await fetch(url, { tls: alice.tls } as RequestInit);
      expect(early.status).toBe(503);
      expect(((await early.json()) as { message: string }).message).toContain('has not yet received the revoked client bundles');

      revoked = new Map();
      const ok = await fetch(url, { tls: alice.tls } as RequestInit);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('# metrics\n');

      revoked = new Map([[alice.serial, { serial: alice.serial, name: 'alice', at: '2026-12-06T00:00:00Z' }]]);
      const no = await fetch(url, { tls: alice.tls } as RequestInit);
      expect(no.status).toBe(403);
      expect(((await no.json()) as { message: string }).message).toBe(`the client bundle of "alice" (serial ${alice.serial}) was revoked at 2026-12-06T00:00:00Z`);
      await expect(fetch(url, { tls: { ca: alice.tls.ca } } as RequestInit)).rejects.toThrow();

      // Renewed in place from the worker's source: asked again, and the new certificate is served.
      const { connect } = await import('node:tls');
      const served = () => new Promise<string>((resolve, reject) => {
        const sock = connect({ host: '127.0.0.1', port: s.address()!.port, ...alice.tls }, () => {
          resolve(sock.getPeerCertificate().serialNumber);
          sock.destroy();
        });
        sock.on('error', reject);
      });
      const deadline = Date.now() + 15_000;
      let now = (await served()).toLowerCase();
      while (now !== issuedSerials[1] && Date.now() < deadline) {
        await Bun.sleep(50);
        now = (await served()).toLowerCase();
      }
      expect(asked.length).toBe(2);
      expect(now).toBe(issuedSerials[1]!);
      revoked = new Map();
      expect((await fetch(url, { tls: alice.tls } as RequestInit)).status).toBe(200);
    } finally {
      await s.stop();
    }
  });

  test('without a worker source a worker does not listen, and says why', async () => {
    const { memoryStore } = await import('../store/index.ts');
    const lines: string[] = [];
    const s = startAdminTcp({ addr: '127.0.0.1:0', fetch: () => new Response(''), store: memoryStore(), nodeId: 'w1', role: () => 'worker', identityReady: async () => {}, log: (m) => lines.push(m) });
    await s.ready;
    expect(s.address()).toBeNull();
    expect(lines.join('\n')).toContain('not served, this node is a worker');
    await s.stop();
  });
});
