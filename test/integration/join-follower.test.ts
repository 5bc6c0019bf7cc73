/**
 * A worker that joins through a follower manager: a follower refuses worker sessions, so the worker
 * must learn the other managers from the join answer and reach the leader's dispatcher. Before the
 * join answer named them, such a worker knew only the follower and never became ready.
 */
import { expect, test } from 'bun:test';
import { Cluster, waitFor } from '../harness/index.ts';

test('a worker joined through a follower reaches the leader, becomes ready and runs a task', async () => {
  await using cluster = Cluster.loopback();
  const { managers } = await cluster.boot({ managers: 3, workers: 0 });
  const nodes = await managers[0]!.json<any[]>('/nodes');
  const leaderAddr = nodes.find((n) => n.ManagerStatus?.Leader)?.ManagerStatus?.Addr;
  const follower = managers.find((m) => m.addr !== leaderAddr)!;
  expect(follower).toBeDefined();
  const token = (await follower.ok('cluster', 'join-token', '-q', 'worker')).trim();

  const w = await cluster.add({ join: [follower.addr, token], name: 'w1' });
  const id = await waitFor('the worker\'s node id', async () => (await w.json<any>('/info')).Swarm.NodeID as string, 20_000);
  await waitFor('the worker ready', async () => {
    const n = (await managers[0]!.json<any[]>('/nodes')).find((x) => x.ID === id);
    return n?.Status?.State === 'ready' ? n : null;
  }, 30_000);

  await managers[0]!.ok('service', 'create', '--name', 'on-worker', '--constraint', 'node.role==worker', '--', '/bin/sleep', '3600');
  await waitFor('a task running on the worker', async () => {
    const tasks = await managers[0]!.json<any[]>('/tasks');
    return tasks.find((t) => t.NodeID === id && t.Status?.State === 'running') ?? null;
  }, 30_000);
});
