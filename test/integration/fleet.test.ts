/**
 * Several hosts as one cluster, with dist/shoal on loopback addresses: 3 managers and 2 workers
 * joined by token; a replicated service spreads over them; kill -9 of the raft leader loses no
 * acknowledged write and another manager takes writes; a killed worker's tasks run elsewhere and
 * it rejoins on restart; a token of another cluster is refused with a clear error on the joiner.
 */
import { expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { multiaddr } from '@multiformats/multiaddr';
import { ClusterTrust, verifyNodeCert } from '../../src/manager/ca/index.ts';
import { AuthGuard } from '../../src/net/auth.ts';
import { loadOrCreateNodeKey } from '../../src/net/identity.ts';
import { createNetNode } from '../../src/net/node.ts';
import { PROTOCOLS } from '../../src/net/protocols.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, Cluster, type Daemon, freePort, leaderOf, logsOnFailure, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const nodesOf = (d: Daemon) => d.json<any[]>('/nodes');

test('3 managers + 2 workers: spread, leader kill -9 without losing writes, worker loss and rejoin', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const { managers, workers, ids } = await cluster.boot({ managers: 3, workers: 2, readyMs: 20_000 });
  const [m1, m2, m3] = managers as [Daemon, Daemon, Daemon];
  const [w1, w2] = workers as [Daemon, Daemon];
  expect(cluster.tokens.worker).toMatch(/^SHOAL-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
  const at = m1.addr;

  const nodes = await nodesOf(m2); // a follower answers too
  expect(nodes.find((n) => n.ID === ids.get(w1))!.Spec.Role).toBe('worker');
  // The address the session comes from (on loopback the dialer's source is 127.0.0.1), as an IP.
  expect(nodes.find((n) => n.ID === ids.get(w1))!.Status.Addr).toMatch(/^127\.0\.0\.\d+$/);
  expect(nodes.find((n) => n.ID === ids.get(m2))!.ManagerStatus.Addr).toBe(m2.addr);

  // A worker's API sends cluster-wide requests to the managers.
  const refused = await w1.cli('service', 'ls');
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain('worker');
  expect(refused.stderr).toContain(at);
  const info = await w1.json<any>('/info');
  expect(info.Swarm).toMatchObject({ NodeID: ids.get(w1), LocalNodeState: 'active', ControlAvailable: false });

  // Writes on followers are forwarded to the leader; the service spreads over the nodes.
  await m2.ok('service', 'create', '--detach', '--name', 'web', '--replicas', '10', '--', '/bin/sleep', '3600');
  const placed = await waitFor('10 running replicas', async () => {
    const r = await m3.running('web');
    return r.length === 10 ? r : null;
  }, 20_000);
  const perNode = (ts: any[]) => ts.reduce((m, t) => m.set(t.NodeID, (m.get(t.NodeID) ?? 0) + 1), new Map<string, number>());
  expect(perNode(placed).get(ids.get(w1)!)).toBeGreaterThan(0);
  expect(perNode(placed).get(ids.get(w2)!)).toBeGreaterThan(0);

  // Acknowledged writes through every manager, then kill -9 of the leader.
  const acked: string[] = [];
  for (let i = 0; i < 6; i++) {
    const name = `ack-${i}`;
    await managers[i % 3]!.ok('service', 'create', '--detach', '--name', name, '--replicas', '0', '--', '/bin/sleep', '1');
    acked.push(name);
  }
  const leader = await leaderOf(managers, ids);
  await leader.kill9();
  const survivors = managers.filter((m) => m !== leader);
  await waitFor('a new leader taking writes', async () => {
    const r = await survivors[0]!.cli('service', 'create', '--detach', '--name', 'after-kill', '--replicas', '0', '--', '/bin/sleep', '1');
    return r.code === 0 || /already exists/.test(r.stderr);
  }, 20_000);
  for (const s of survivors) {
    const names = (await s.json<any[]>('/services')).map((x) => x.Spec.Name);
    for (const a of [...acked, 'after-kill', 'web']) expect(names).toContain(a);
  }

  // A worker killed: its tasks run elsewhere; restarted on its data dir, it rejoins without a token.
  const w1Pids = (await survivors[0]!.running('web')).filter((t) => t.NodeID === ids.get(w1)).map((t) => t.Status.ContainerStatus?.PID as number).filter(Boolean);
  expect(w1Pids.length).toBeGreaterThan(0);
  await w1.kill9();
  expect(w1Pids.every(alive)).toBe(true); // the tasks outlive their daemon
  const live = survivors[0]!;
  await waitFor("w1 down and web's 10 replicas running on live nodes", async () => {
    const ns = await nodesOf(live);
    const down = new Set(ns.filter((n) => n.Status.State === 'down').map((n) => n.ID));
    if (!down.has(ids.get(w1)!)) return false;
    const r = await live.running('web');
    return r.length === 10 && r.every((t) => !down.has(t.NodeID));
  }, 30_000);
  await w1.start(false);
  await waitFor('w1 ready again', async () => (await nodesOf(live)).find((n) => n.ID === ids.get(w1))?.Status.State === 'ready', 20_000);
  // It reconciles: its old tasks, replaced elsewhere meanwhile, are stopped.
  await waitFor("w1's replaced tasks stopped", () => w1Pids.every((p) => !alive(p)), 20_000);

  // The killed leader restarts on its data dir and comes back as a follower; then it is demoted
  // (the leader drops it from raft, it renews its certificate as a worker and keeps running tasks).
  await leader.start(false);
  const old = ids.get(leader)!;
  await waitFor('the old leader back and reachable', async () => {
    const n = (await nodesOf(live)).find((x) => x.ID === old);
    return n?.Status.State === 'ready' && n.ManagerStatus?.Reachability === 'reachable';
  }, 20_000);
  await live.ok('node', 'demote', old);
  await waitFor('the demoted host answering as a worker', async () => {
    const r = await leader.cli('service', 'ls');
    return r.code !== 0 && r.stderr.includes('worker');
  }, 20_000);
  await waitFor('writes taken after the demotion', async () => {
    const r = await live.cli('service', 'create', '--detach', '--name', 'after-demote', '--replicas', '0', '--', '/bin/sleep', '1');
    return r.code === 0 || /already exists/.test(r.stderr);
  }, 20_000);
  await waitFor('the demoted node ready as a worker', async () => {
    const n = (await nodesOf(live)).find((x) => x.ID === old);
    return n?.Spec.Role === 'worker' && n.Status.State === 'ready';
  }, 20_000);

  // Promoted again: it renews its certificate as a manager, starts again with an empty raft log,
  // and the leader adds it as a learner, then a voter; its API answers cluster-wide requests again.
  await live.ok('node', 'promote', old);
  await waitFor('the promoted host serving the cluster state', async () => {
    const r = await leader.cli('service', 'ls');
    return r.code === 0 && r.stdout.includes('after-demote');
  }, 30_000);
  await waitFor('the promoted node a reachable manager', async () => {
    const n = (await nodesOf(live)).find((x) => x.ID === old);
    return n?.Spec.Role === 'manager' && n.ManagerStatus?.Reachability === 'reachable' && n.Status.State === 'ready';
  }, 20_000);

  // A removed node is refused at once, even though its certificate is still valid.
  const removedId = ids.get(w2)!;
  await live.ok('node', 'rm', '--force', removedId);
  expect((await nodesOf(live)).find((n) => n.ID === removedId)).toBeUndefined();
  const before = w2.output.length;
  await waitFor("w2's session refused", () => /removed from the cluster/.test(w2.output.slice(before)), 20_000);
  await waitFor("w2 kept out", async () => !(await nodesOf(live)).some((n) => n.ID === removedId) && !(await live.running('web')).some((t) => t.NodeID === removedId), 20_000);
}), 120_000);

test("refusals: a token of another cluster (on the joining side, naming why), a worker dialling raft", logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const m1 = await cluster.add({ init: true });

  // A worker's certificate cannot speak raft: its own end refuses early, and a hand-made stream
  // on an authenticated connection is refused by the manager, which says why.
  const w = await cluster.add({ join: [m1.addr, (await m1.ok('cluster', 'join-token', '-q', 'worker')).trim()] });
  await w.stop();
  const membership = JSON.parse(readFileSync(join(w.dataDir, 'cluster.json'), 'utf8'));
  const key = await loadOrCreateNodeKey(w.dataDir);
  const trust = await ClusterTrust.fromPem(membership.RootCA);
  const identity = await verifyNodeCert(membership.Cert, { trust, clusterId: membership.ClusterID });
  expect(identity.role).toBe('worker');
  const node = await createNetNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] });
  await node.start();
  const guard = new AuthGuard(node, { credentials: () => ({ clusterId: membership.ClusterID, trust, identity }) });
  await guard.start();
  try {
    const [ip, port] = m1.addr.split(':');
    const target = multiaddr(`/ip4/${ip}/tcp/${port}`);
    await expect(guard.open(target, PROTOCOLS.raft)).rejects.toThrow('this node is a worker; /shoal/raft/1 is for manager nodes only');
    const { connection } = await guard.open(target, PROTOCOLS.dispatcher); // authenticated as the worker
    const stream = await connection.newStream(PROTOCOLS.raft.id).catch(() => null);
    try {
      stream?.send(new Uint8Array([1, 2, 3]));
    } catch {} // already reset by the manager: that is the refusal
    await waitFor("the manager's refusal", () => /on \/shoal\/raft\/1: node \S+ is a worker; \/shoal\/raft\/1 is for manager nodes only/.test(m1.output), 10_000);
  } finally {
    await guard.stop();
    await node.stop();
  }

  // Leaving: a manager needs --force; a worker's daemon stops and its membership files go.
  const refusedLeave = await m1.cli('cluster', 'leave');
  expect(refusedLeave.code).not.toBe(0);
  expect(refusedLeave.stderr).toContain('--force');
  await w.start(false);
  await w.ok('cluster', 'leave');
  expect(await w.proc!.exited).toBe(0);
  expect(existsSync(join(w.dataDir, 'cluster.json'))).toBe(false);

  await using other = await tempDaemon();
  await other.start();
  const foreign = (await waitFor('the other cluster\'s token', async () => (await other.ok('cluster', 'join-token', '-q', 'worker')).trim())) as string;
  const dir = mkdtempSync(join(tmpdir(), 'shoal-fleet-'));
  try {
    const p = Bun.spawn([SHOAL, 'daemon', '--data-dir', dir, '--listen-addr', `127.0.0.9:${freePort('127.0.0.9')}`, '--join', m1.addr, '--token', foreign], { stdout: 'pipe', stderr: 'pipe' });
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect(code).not.toBe(0);
    expect(stderr).toContain('another root CA');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}), 60_000);
