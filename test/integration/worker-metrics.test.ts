/**
 * `--metrics-addr` on a worker, on the compiled binary: a manager and a worker on loopback, the
 * worker scraped over https with the managers' mutual TLS (its server certificate issued by a
 * manager for its address, the revoked bundles brought by its dispatcher session). A bundle of the
 * cluster scrapes the worker's own series; no certificate, another CA's, a revoked bundle and an
 * expired one are refused.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueClientCert } from '../../src/manager/ca/client-cert.ts';
import { RootCA } from '../../src/manager/ca/index.ts';
import { Cluster, type Daemon, freePort, logsOnFailure, waitFor } from '../harness/index.ts';
import { Scrape } from '../harness/prometheus.ts';

let cluster: Cluster;
let m: Daemon;
let w: Daemon;
let workerId: string;
let dir: string;
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-wmetrics-'));
  process.env.SHOAL_TEST_MIN_CERT_EXPIRY = '1s'; // lets a bundle expire within the test
  cluster = Cluster.loopback();
  m = await cluster.add({ init: true, name: 'm1' });
  const tokens = await cluster.tokensOf(m);
  // The second loopback host is 127.0.0.2 (harness): its listener answers there.
  const port = freePort('127.0.0.2');
  url = `https://127.0.0.2:${port}/metrics`;
  w = await cluster.add({ join: [m.addr, tokens.worker], name: 'w1', args: ['--metrics-addr', `127.0.0.2:${port}`] });
  workerId = (await cluster.nodeIds([w])).get(w)!;
  await cluster.waitReady(2, 1, 30_000);
  await waitFor('the worker\'s metrics listener', () => w.output.includes(`metrics on tcp://127.0.0.2:${port}`), 30_000);
  await m.ok('ca', 'client-bundle', '--name', 'alice', '--out', join(dir, 'alice'));
  await m.ok('ca', 'client-bundle', '--name', 'bob', '--role', 'read-only', '--out', join(dir, 'bob'));
}, 90_000);
afterAll(async () => {
  await cluster?.[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
  delete process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
});

function tlsOf(name: string): { cert: string; key: string; ca: string } {
  const f = (x: string) => readFileSync(join(dir, name, x), 'utf8');
  return { cert: f('cert.pem'), key: f('key.pem'), ca: f('ca.pem') };
}

function scrape(name: string): Promise<Response> {
  return fetch(url, { tls: tlsOf(name) } as RequestInit);
}

test('an admin bundle scrapes the worker over https: its tasks, executor start latency, mesh, RSS and event-loop lag; no manager series', logsOnFailure(async () => {
  await m.ok('service', 'create', '--name', 'on-worker', '--constraint', `node.id==${workerId}`, '--', '/bin/sleep', '3600');
  const s = await waitFor('the worker\'s task running in its scrape', async () => {
    const r = await scrape('alice');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toStartWith('text/plain; version=0.0.4');
    const parsed = new Scrape(await r.text());
    return parsed.value('shoal_node_tasks', { state: 'running', runtime: 'process' }) === 1 ? parsed : null;
  }, 30_000, 250);
  expect(s.count('shoal_executor_start_latency_seconds', { runtime: 'process' })).toBe(1);
  expect(s.family('shoal_executor_start_latency_seconds').type).toBe('histogram');
  expect(s.family('shoal_mesh_active_connections').type).toBe('gauge');
  expect(s.family('shoal_mesh_connections_total').type).toBe('counter');
  expect(s.family('shoal_mesh_bytes_total').type).toBe('counter');
  expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
  expect(s.value('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  for (const managerOnly of ['shoal_raft_commit_index', 'shoal_raft_term', 'shoal_tasks', 'shoal_dispatcher_sessions', 'shoal_scheduler_pending_tasks', 'shoal_raft_commit_latency_seconds', 'shoal_store_writes_total', 'shoal_scheduler_placements_total']) expect(s.families.has(managerOnly)).toBe(false);

  // A read-only bundle is enough; nothing but /metrics is served there.
  expect((await scrape('bob')).status).toBe(200);
  const other = await fetch(url.replace('/metrics', '/nodes'), { tls: tlsOf('bob') } as RequestInit);
  expect(other.status).toBe(404);
  // The certificate was issued for the worker's address, not taken from anywhere else.
  expect(w.output).toMatch(/metrics on TCP: server certificate from \S+ for [^\n]*127\.0\.0\.2/);
}), 60_000);

test('refused: no client certificate, a bundle from another CA, plain HTTP', logsOnFailure(async () => {
  const { ca } = tlsOf('alice');
  await expect(fetch(url, { tls: { ca } } as RequestInit)).rejects.toThrow();
  await expect(fetch(url.replace('https:', 'http:'))).rejects.toThrow();
  // Looks right (this cluster's id, admin) but is signed by another CA: refused at the handshake.
  const clusterId = (await m.json('/swarm')).ID;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const forged = await issueClientCert(await RootCA.create(), { name: 'mallory', role: 'admin', clusterId, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string });
  mkdirSync(join(dir, 'mallory'));
  writeFileSync(join(dir, 'mallory', 'ca.pem'), ca);
  writeFileSync(join(dir, 'mallory', 'cert.pem'), forged.certPem);
  writeFileSync(join(dir, 'mallory', 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  await expect(scrape('mallory')).rejects.toThrow();
  expect((await scrape('alice')).status).toBe(200); // the listener is still up and serving
}), 30_000);

test('a bundle revoked on a manager is refused by the worker, with the reason', logsOnFailure(async () => {
  await m.ok('ca', 'client-bundle', '--name', 'carol', '--role', 'read-only', '--out', join(dir, 'carol'));
  expect((await scrape('carol')).status).toBe(200);
  const serial = (await m.ok('ca', 'revoke', 'carol')).trim();
  const refused = await waitFor('the worker refusing carol', async () => {
    const r = await scrape('carol');
    return r.status === 200 ? null : r;
  }, 20_000, 250);
  expect(refused.status).toBe(403);
  expect(((await refused.json()) as { message: string }).message).toMatch(new RegExp(`the client bundle of "carol" \\(serial ${serial}\\) was revoked at `));
  expect((await scrape('bob')).status).toBe(200);
}), 40_000);

test('an expired bundle is refused', logsOnFailure(async () => {
  await m.ok('ca', 'client-bundle', '--name', 'erin', '--expiry', '2s', '--out', join(dir, 'erin'));
  const notAfter = new Date(JSON.parse(await m.ok('ca', 'ls', '--format', 'json')).find((r: { Name: string }) => r.Name === 'erin').NotAfter).getTime();
  await waitFor('erin refused', async () => {
    try {
      const r = await scrape('erin');
      return r.status === 200 ? null : true;
    } catch {
      return true; // refused at the handshake
    }
  }, 20_000, 250);
  expect(Date.now()).toBeGreaterThan(notAfter); // refused for its expiry, not for anything else
}), 30_000);
