/**
 * Quorum loss with dist/shoal on loopback: 3 managers and a worker; two managers killed with -9;
 * the survivor refuses writes with an error that names the lost quorum and --force-new-cluster;
 * restarted with --force-new-cluster it is a one-manager cluster with all its state (cluster, CA,
 * tokens, services, tasks, the worker), takes writes, and grows again: a new manager joins with
 * the manager token and becomes a voter; started again with the flag still given, it forces nothing.
 * A lost manager that comes back is refused.
 */
import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Daemon, logsOnFailure, waitFor } from '../harness/index.ts';

const nodesOf = (d: Daemon) => d.json<any[]>('/nodes');
const serviceNames = async (d: Daemon) => (await d.json<any[]>('/services')).map((s) => s.Spec.Name as string);
const create = (d: Daemon, name: string) => d.cli('service', 'create', '--detach', '--name', name, '--replicas', '0', '--', '/bin/sleep', '1');

test('quorum loss: writes refused clearly; --force-new-cluster recovers the survivor with its state; it grows again', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  // Roles by hand only: the automatic manager count would promote the worker once the cluster
  // grows again, racing the checks made on it below.
  const { managers, workers } = await cluster.boot({ managers: 3, workers: 1, init: ['--managers', '-1'], readyMs: 20_000 });
  const [m1, m2, m3] = managers as [Daemon, Daemon, Daemon];
  const [w1] = workers as [Daemon];
  const managerToken = cluster.tokens.manager;
  // A manager that has just joined answers /info at once, from what it knows locally.
  const id = async (d: Daemon) => {
    const nodeId = (await d.json<any>('/info')).Swarm.NodeID as string;
    expect(nodeId).toMatch(/^[0-9a-z]{10,}$/);
    return nodeId;
  };
  const [id1, id2, id3, idw] = [await id(m1), await id(m2), await id(m3), await id(w1)];

  await m1.ok('service', 'create', '--detach', '--name', 'web', '--replicas', '4', '--', '/bin/sleep', '3600');
  for (let i = 0; i < 3; i++) await m2.ok('service', 'create', '--detach', '--name', `ack-${i}`, '--replicas', '0', '--', '/bin/sleep', '1');
  await waitFor('4 running replicas of web', async () => (await m3.running('web')).length === 4, 20_000);
  // What the survivor (m3, a manager that joined) must still hold; a read on it is linearizable.
  const swarmBefore = await m3.json<any>('/swarm');
  const servicesBefore = (await m3.json<any[]>('/services')).map((s) => s.ID).sort();
  const tasksBefore = (await m3.tasks()).map((t) => t.ID);
  expect(servicesBefore).toHaveLength(4);

  await Promise.all([m1.kill9(), m2.kill9()]);
  // No majority: a write is refused with the reason and the way out.
  const refusal = await waitFor('a write refused for the lost quorum', async () => {
    const r = await m3.cli('service', 'create', '--detach', '--name', 'no-quorum', '--replicas', '0', '--', '/bin/sleep', '1');
    expect(r.code).not.toBe(0);
    return /quorum/.test(r.stderr) ? r.stderr : null;
  }, 25_000);
  expect(refusal).toContain('--force-new-cluster');
  // Without a leader, /info still answers, from the survivor's own state.
  const lonely = await m3.json<any>('/info');
  expect(lonely.Swarm).toMatchObject({ NodeID: id3, LocalNodeState: 'active', ControlAvailable: true });
  expect(lonely.Swarm.Cluster.ID).toBe(swarmBefore.ID);
  expect(lonely.Swarm.Error).not.toBe('');

  // The survivor again, with --force-new-cluster.
  await m3.stop();
  const r3 = cluster.adopt(new Daemon(m3.dataDir, ['--listen-addr', m3.addr, '--force-new-cluster'], { name: 'm3 (--force-new-cluster)' }));
  await r3.start(false);
  const swarm = await r3.json<any>('/swarm');
  expect(swarm.ID).toBe(swarmBefore.ID);
  expect(swarm.JoinTokens).toEqual(swarmBefore.JoinTokens);
  expect(swarm.TLSInfo.TrustRoot).toBe(swarmBefore.TLSInfo.TrustRoot);
  expect((await r3.json<any[]>('/services')).map((s) => s.ID).sort()).toEqual(servicesBefore);
  const taskIds = new Set((await r3.tasks()).map((t) => t.ID));
  for (const t of tasksBefore) expect(taskIds.has(t)).toBe(true);
  // The lost managers are removed (refused if they come back); the worker stays.
  const nodes = await nodesOf(r3);
  expect(nodes.map((n) => n.ID).sort()).toEqual([id3, idw].sort());
  for (const gone of [id1, id2]) expect(nodes.some((n) => n.ID === gone)).toBe(false);
  expect(nodes.find((n) => n.ID === id3)!.Spec.Role).toBe('manager');
  expect(r3.output).toContain('--force-new-cluster: this node is now the only manager');

  // Writes are taken; web's replicas of the lost hosts run again on the nodes left.
  await r3.ok('service', 'create', '--detach', '--name', 'after', '--replicas', '0', '--', '/bin/sleep', '1');
  await waitFor('web back to 4 replicas on the nodes left', async () => {
    const r = await r3.running('web');
    return r.length === 4 && r.every((t) => t.NodeID === id3 || t.NodeID === idw);
  }, 20_000);

  // It grows again: a new manager joins with the (unchanged) manager token and becomes a voter.
  const m4 = await cluster.add({ join: [m3.addr, managerToken], name: 'm4' });
  const id4 = await id(m4);
  await waitFor('2 reachable managers (voters), the new one included', async () => {
    const ns = await nodesOf(r3);
    return ns.find((n) => n.ID === id4)?.ManagerStatus?.Reachability === 'reachable' &&
      ns.filter((n) => n.ManagerStatus?.Reachability === 'reachable').length === 2;
  }, 20_000);
  await m4.ok('service', 'create', '--detach', '--name', 'via-new-manager', '--replicas', '0', '--', '/bin/sleep', '1');
  const names = (await m4.json<any[]>('/services')).map((s) => s.Spec.Name);
  for (const n of ['web', 'ack-0', 'ack-1', 'ack-2', 'after', 'via-new-manager']) expect(names).toContain(n);

  // The flag left on the command line (a unit file): the next start forces nothing, and the new
  // manager stays a member.
  await r3.stop();
  await r3.start(false);
  await waitFor('the restart to say there is nothing to force', () => r3.output.includes('--force-new-cluster: nothing to force: it was applied already and the cluster has grown again since'), 10_000);
  await waitFor('writes again with both managers', async () => (await create(r3, 'after-restart-with-flag')).code === 0, 25_000);
  expect((await nodesOf(m4)).find((n) => n.ID === id4)?.Spec.Role).toBe('manager');
  await waitFor('2 reachable managers again', async () => (await nodesOf(r3)).filter((n) => n.ManagerStatus?.Reachability === 'reachable').length === 2, 20_000);

  // A lost manager that comes back with its old log is refused by the new cluster: it cannot elect
  // a leader with the old configuration, and the new cluster goes on without it.
  await m1.start(false);
  await waitFor('the old manager to refuse writes for the lost quorum', async () => {
    const r = await create(m1, 'from-the-old-manager');
    return r.code !== 0 && /quorum/.test(r.stderr);
  }, 25_000);
  expect((await create(r3, 'after-old-manager-back')).code).toBe(0);
  expect((await nodesOf(m4)).some((n) => n.ID === id1)).toBe(false);
  expect(await serviceNames(r3)).not.toContain('from-the-old-manager');
  await m1.stop();

  // Where it cannot apply, the flag is refused, naming why and what to do.
  await w1.stop();
  const onWorker = await r3.cli('daemon', '--data-dir', w1.dataDir, '--force-new-cluster');
  expect(onWorker.code).toBe(1);
  expect(onWorker.stderr).toContain("--force-new-cluster: this host is a worker and holds no raft log; run it on a surviving manager's --data-dir");
  const empty = mkdtempSync(join(tmpdir(), 'shoal-empty-'));
  try {
    const onEmpty = await r3.cli('daemon', '--data-dir', empty, '--force-new-cluster');
    expect(onEmpty.code).toBe(1);
    expect(onEmpty.stderr).toContain(`--force-new-cluster: ${empty} holds no cluster state to recover`);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}), 90_000);
