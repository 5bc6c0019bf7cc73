/**
 * The desired number of managers, with dist/shoal on loopback: a cluster made with one manager
 * grows to 3 managers from workers joined with the worker token (automatic count); a manager
 * killed is replaced by the remaining worker after the (test-shortened) grace period, and demoted.
 */
import { expect, test } from 'bun:test';
import { Cluster, type Daemon, logsOnFailure, waitFor } from '../harness/index.ts';

const nodesOf = (d: Daemon) => d.json<any[]>('/nodes');

test('one token boots 3 managers; a lost manager is replaced by a worker after the grace period', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const m1 = await cluster.add({ name: 'm1' });
  await m1.ok('cluster', 'init', '--manager-lost-grace', '3s');
  const token = await waitFor('the worker token', async () => (await m1.cli('cluster', 'join-token', '-q', 'worker')).stdout.trim() || null, 20_000);
  const w1 = await cluster.add({ join: [m1.addr, token], name: 'w1' });
  const w2 = await cluster.add({ join: [m1.addr, token], name: 'w2' });
  const ids = await cluster.nodeIds();

  const reachableManagers = async (via: Daemon) =>
    (await nodesOf(via)).filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Reachability === 'reachable' && n.Status.State === 'ready').map((n) => n.ID).sort();
  await waitFor('3 reachable managers out of 1 manager and 2 workers', async () => (await reachableManagers(m1)).length === 3, 60_000);
  expect(await reachableManagers(m1)).toEqual([...ids.values()].sort());
  // Each build says it applies task patches: the store writes task updates as patches from here on.
  expect((await nodesOf(m1)).map((n) => n.Description?.Features)).toEqual([['task-patch'], ['task-patch'], ['task-patch']]);
  // The promoted hosts serve the cluster state.
  await waitFor('w1 answering as a manager', async () => (await w1.cli('node', 'ls')).code === 0, 20_000);

  // A fourth host stays a worker (3 is the automatic count).
  const w3 = await cluster.add({ join: [m1.addr, token], name: 'w3' });
  const w3Id = (await w3.json<any>('/info')).Swarm.NodeID as string;
  await waitFor('w3 ready', async () => (await nodesOf(m1)).find((n) => n.ID === w3Id)?.Status.State === 'ready', 20_000);
  expect((await nodesOf(m1)).find((n) => n.ID === w3Id)!.Spec.Role).toBe('worker');

  // Kill a manager that does not lead: after the grace period w3 replaces it, and it is demoted.
  const leaderId = (await nodesOf(m1)).find((n) => n.ManagerStatus?.Leader)!.ID;
  const victim = [m1, w1, w2].find((d) => ids.get(d) !== leaderId)!;
  const live = [m1, w1, w2].find((d) => d !== victim)!;
  await victim.kill9();
  await waitFor('w3 promoted and the killed manager demoted', async () => {
    const ns = await nodesOf(live);
    return ns.find((n) => n.ID === w3Id)?.Spec.Role === 'manager' && ns.find((n) => n.ID === ids.get(victim))?.Spec.Role === 'worker';
  }, 60_000);
  await waitFor('3 reachable managers again', async () => (await reachableManagers(live)).length === 3, 60_000);
  expect(await reachableManagers(live)).toContain(w3Id);
}), 180_000);
