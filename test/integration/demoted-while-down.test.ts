/**
 * A manager demoted while it was down restarts with a raft log from before its removal: it is still
 * in its own old configuration, nobody sends it entries any more, and no leader answers it. Found by
 * the chaos test (a lost manager replaced and demoted by the manager count, then restarted): such a
 * host stayed a manager without a leader for good. It learns its role from the leader's dispatcher.
 */
import { expect, test } from 'bun:test';
import { Cluster, waitFor } from '../harness/index.ts';

test('a manager demoted while down comes back as a worker and gets tasks', async () => {
  await using cluster = Cluster.loopback();
  const { managers } = await cluster.boot({ managers: 3, workers: 0 });
  const nodes = await managers[0]!.json<any[]>('/nodes');
  const leaderAddr = nodes.find((n) => n.ManagerStatus?.Leader)?.ManagerStatus?.Addr;
  const leader = managers.find((m) => m.addr === leaderAddr)!;
  const down = managers.find((m) => m.addr !== leaderAddr)!;
  const downId = (await down.json<any>('/info')).Swarm.NodeID as string;

  await down.kill9();
  await leader.ok('node', 'demote', downId);
  await waitFor('the demoted node out of the raft configuration', async () => {
    const n = (await leader.json<any[]>('/nodes')).find((x) => x.ID === downId);
    return n?.Spec?.Role === 'worker' && !n.ManagerStatus ? n : null;
  }, 30_000);

  await down.start(false);
  await waitFor('the restarted host a worker', async () => down.output.includes('this node is a worker now'), 60_000);
  const n = await waitFor('it ready as a worker', async () => {
    const x = (await leader.json<any[]>('/nodes')).find((y) => y.ID === downId);
    return x?.Status?.State === 'ready' && x.Spec.Role === 'worker' ? x : null;
  }, 30_000);
  expect(n.ManagerStatus).toBeUndefined();
  expect((await down.json<any>('/info')).Swarm.ControlAvailable).toBe(false);

  await leader.ok('service', 'create', '--name', 'on-it', '--constraint', `node.id==${downId}`, '--', '/bin/sleep', '3600');
  await waitFor('a task running on the demoted host', async () => {
    const tasks = await leader.json<any[]>('/tasks');
    return tasks.find((t) => t.NodeID === downId && t.Status?.State === 'running') ?? null;
  }, 30_000);
});
