/**
 * `GET /metrics` as Prometheus meets it, on the compiled binary: the socket after services were made
 * (every series of issue 17 present with values that follow from what was done), and the opt-in TCP
 * address (`--metrics-addr`) with the admin API's mutual TLS: a read-only bundle scrapes, nothing
 * else is served there, and a client without a certificate is refused. A worker serves its own.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Cluster, type Daemon, freePort, logsOnFailure, tempDaemon, waitFor } from '../harness/index.ts';
import { Scrape } from '../harness/prometheus.ts';

let d: Daemon & AsyncDisposable;
let dir: string;
let metricsUrl: string;
const published = freePort();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-metrics-'));
  const port = freePort();
  metricsUrl = `https://127.0.0.1:${port}/metrics`;
  d = await tempDaemon(['--metrics-addr', `127.0.0.1:${port}`, '--listen-addr', `127.0.0.1:${freePort()}`]);
  await d.start();
  await waitFor('the metrics listener', () => d.output.includes(`metrics on tcp://127.0.0.1:${port}`), 20_000);
  await d.ok('ca', 'client-bundle', '--name', 'prometheus', '--role', 'read-only', '--out', join(dir, 'prometheus'));
}, 60_000);
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
});

async function scrapeSocket(): Promise<Scrape> {
  const r = await d.api('/metrics');
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toStartWith('text/plain; version=0.0.4');
  return new Scrape(await r.text());
}

test('the socket serves every series, with values that follow from the services made', logsOnFailure(async () => {
  // Nothing listens on the target: the mesh accepts the connection all the same, which is what is counted.
  await d.ok('service', 'create', '--name', 'web', '--replicas', '2', '--publish', `published=${published},target=${freePort()}`, '--', '/bin/sleep', '3600');
  await d.ok('service', 'create', '--detach', '--name', 'nowhere', '--constraint', 'node.labels.zone==mars', '--', '/bin/sleep', '60');
  await waitFor('the mesh listening', () => d.output.includes(`:${published}/tcp`), 20_000);
  await new Promise<void>((resolve, reject) => {
    const s = connect(published, '127.0.0.1');
    s.on('error', reject);
    s.on('close', () => resolve());
    s.on('connect', () => s.end());
  });

  const m = await waitFor('a scrape with the pending reason and the connection counted', async () => {
    const s = await scrapeSocket();
    const pending = s.samples('shoal_scheduler_pending_tasks').filter((x) => x.labels.reason?.includes('zone'));
    return pending.length === 1 && (s.value('shoal_mesh_connections_total', { service: 'web' }) ?? 0) >= 1 ? s : null;
  }, 20_000);

  // Raft
  expect(m.value('shoal_raft_term')).toBeGreaterThanOrEqual(1);
  expect(m.value('shoal_raft_commit_index')).toBeGreaterThan(0);
  expect(m.value('shoal_raft_applied_index')).toBeGreaterThan(0);
  expect(m.value('shoal_raft_apply_lag_entries')).toBeGreaterThanOrEqual(0);
  expect(m.value('shoal_raft_leader')).toBe(1);
  expect(m.value('shoal_raft_leader_changes_total')).toBeGreaterThanOrEqual(1);
  expect(m.family('shoal_raft_commit_latency_seconds').type).toBe('histogram');
  expect(m.count('shoal_raft_commit_latency_seconds')).toBeGreaterThan(0);
  // Store, scheduler, dispatcher
  expect(m.value('shoal_store_writes_total', { result: 'ok' })).toBeGreaterThan(0);
  expect(m.value('shoal_scheduler_placements_total')).toBeGreaterThanOrEqual(2);
  const [pending] = m.samples('shoal_scheduler_pending_tasks').filter((x) => x.labels.reason?.includes('zone'));
  expect(pending!.value).toBe(1);
  expect(m.value('shoal_dispatcher_sessions')).toBe(1);
  // Tasks: the cluster's (store) and this node's (agent)
  expect(m.value('shoal_tasks', { state: 'running', runtime: 'process' })).toBe(2);
  expect(m.value('shoal_tasks', { state: 'pending', runtime: 'process' })).toBe(1);
  expect(m.value('shoal_node_tasks', { state: 'running', runtime: 'process' })).toBe(2);
  expect(m.count('shoal_executor_start_latency_seconds', { runtime: 'process' })).toBeGreaterThanOrEqual(2);
  // Mesh
  expect(m.value('shoal_mesh_connections_total', { service: 'web' })).toBeGreaterThanOrEqual(1);
  expect(m.value('shoal_mesh_active_connections')).toBeGreaterThanOrEqual(0);
  expect(m.family('shoal_mesh_bytes_total').type).toBe('counter');
  expect(m.value('shoal_mesh_bytes_total', { service: 'web', direction: 'in' })).toBeGreaterThanOrEqual(0);
  // The process, under Bun's compiled executable
  expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
  expect(m.value('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  // The percentiles read NaN when no sample fell since the last scrape: only their presence is checked.
  expect(m.family('nodejs_eventloop_lag_p99_seconds').type).toBe('gauge');
}), 90_000);

test('--metrics-addr: a read-only bundle scrapes over mutual TLS; only /metrics; no certificate, no scrape', logsOnFailure(async () => {
  const bundle = (f: string) => readFileSync(join(dir, 'prometheus', f), 'utf8');
  const tls = { cert: bundle('cert.pem'), key: bundle('key.pem'), ca: bundle('ca.pem') };
  const r = await fetch(metricsUrl, { tls } as RequestInit);
  expect(r.status).toBe(200);
  const m = new Scrape(await r.text());
  expect(m.value('shoal_raft_commit_index')).toBeGreaterThan(0);
  expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(0);

  const other = await fetch(metricsUrl.replace('/metrics', '/nodes'), { tls } as RequestInit);
  expect(other.status).toBe(404);
  expect(((await other.json()) as { message: string }).message).toContain('serves GET /metrics only');

  await expect(fetch(metricsUrl, { tls: { ca: tls.ca } } as RequestInit)).rejects.toThrow();
  await expect(fetch(metricsUrl.replace('https:', 'http:'))).rejects.toThrow();
}), 30_000);

test('a worker serves /metrics on its socket: its own tasks and process, no raft', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const { managers: [m], workers: [w], ids } = await cluster.boot({ managers: 1, workers: 1, init: ['--managers', '1'], readyMs: 20_000 });
  await m!.ok('service', 'create', '--name', 'on-worker', '--constraint', `node.id==${ids.get(w!)}`, '--', '/bin/sleep', '3600');
  const r = await w!.api('/metrics');
  expect(r.status).toBe(200);
  const s = new Scrape(await r.text());
  expect(s.value('shoal_node_tasks', { state: 'running', runtime: 'process' })).toBe(1);
  expect(s.count('shoal_executor_start_latency_seconds', { runtime: 'process' })).toBe(1);
  for (const managerOnly of ['shoal_raft_commit_index', 'shoal_raft_term', 'shoal_tasks', 'shoal_dispatcher_sessions', 'shoal_raft_leader_changes_total', 'shoal_store_writes_total']) expect(s.families.has(managerOnly)).toBe(false);
  expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(0);
  // The manager's view of the same: one session besides its own, the task running in the cluster.
  const ms = new Scrape(await (await m!.api('/metrics')).text());
  expect(ms.value('shoal_dispatcher_sessions')).toBe(2);
  expect(ms.value('shoal_tasks', { state: 'running', runtime: 'process' })).toBe(1);
}), 90_000);
