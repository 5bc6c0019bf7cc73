/**
 * The desired number of managers, with dist/shoal on loopback: a cluster made with one manager
 * grows to 3 managers from workers joined with the worker token (automatic count); a manager
 * killed is replaced by the remaining worker after the (test-shortened) grace period, and demoted.
 */
import { expect, test } from 'bun:test';
import { type Daemon, Fleet, waitFor } from './harness.ts';

const nodesOf = (d: Daemon) => d.json<any[]>('/nodes');

test('one token boots 3 managers; a lost manager is replaced by a worker after the grace period', async () => {
  await using fleet = new Fleet();
  const m1 = await fleet.add();
  await m1.ok('cluster', 'init', '--manager-lost-grace', '3s');
  const token = await waitFor('the worker token', async () => (await m1.cli('cluster', 'join-token', '-q', 'worker')).stdout.trim() || null, 20_000);
  const w1 = await fleet.add({ join: [fleet.addr(m1), token] });
  const w2 = await fleet.add({ join: [fleet.addr(m1), token] });
  const ids = new Map<Daemon, string>();
  // Every host answers /info at once (a manager that has just joined, from its local state).
  for (const d of fleet.hosts) ids.set(d, await waitFor('the node id in /info', async () => (await d.json<any>('/info')).Swarm.NodeID as string, 20_000));

  const reachableManagers = async (via: Daemon) =>
    (await nodesOf(via)).filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Reachability === 'reachable' && n.Status.State === 'ready').map((n) => n.ID).sort();
  await waitFor('3 reachable managers out of 1 manager and 2 workers', async () => (await reachableManagers(m1)).length === 3, 60_000).catch((err) => {
    throw new Error(`${err.message}\nm1's log:\n${m1.output.slice(-3000)}`);
  });
  expect(await reachableManagers(m1)).toEqual([...ids.values()].sort());
  // The promoted hosts serve the cluster state.
  await waitFor('w1 answering as a manager', async () => (await w1.cli('node', 'ls')).code === 0, 20_000);

  // A fourth host stays a worker (3 is the automatic count).
  const w3 = await fleet.add({ join: [fleet.addr(m1), token] });
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
  }, 60_000).catch((err) => {
    throw new Error(`${err.message}\nlive manager's log:\n${live.output.slice(-3000)}`);
  });
  await waitFor('3 reachable managers again', async () => (await reachableManagers(live)).length === 3, 60_000);
  expect(await reachableManagers(live)).toContain(w3Id);
}, 180_000);
