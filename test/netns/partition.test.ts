/**
 * Partitions between dist/shoal managers in namespace hosts (item 9 of issue 4): three managers
 * and a worker, each in its own network namespace. The leader is cut off from the others (a
 * minority of one): it refuses writes with the quorum error, the majority elects a leader and takes
 * writes; after healing the old leader converges (a read on it returns the majority's writes) and
 * nothing written on the minority side took effect. Then a one-way drop (leader → one follower):
 * the cluster keeps taking writes and the follower catches up once healed.
 * The APIs are unix sockets in the data dirs, reachable from the test's own namespace.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { Cluster, type Daemon, disposeAll, leaderOf, logsOnFailure, requireNetns, waitFor } from '../harness/index.ts';

const unavailable = requireNetns();

const nodesOf = (d: Daemon) => d.json<any[]>('/nodes');
const serviceNames = async (d: Daemon) => (await d.json<any[]>('/services')).map((s) => s.Spec.Name as string);
const create = (d: Daemon, name: string) => d.cli('service', 'create', '--detach', '--name', name, '--replicas', '0', '--', '/bin/sleep', '1');

describe.skipIf(unavailable !== null)(`partitions between namespace hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterEach(() => disposeAll());

  test('the minority refuses writes, the majority goes on, healing converges; a one-way drop', logsOnFailure(async () => {
    await using cluster = await Cluster.netns({ hosts: 4 });
    const net = cluster.net!;
    const { managers, workers, ids } = await cluster.boot({ managers: 3, workers: 1 });
    const [, m2] = managers as [Daemon, Daemon, Daemon];
    const [w1] = workers as [Daemon];
    await m2.ok('service', 'create', '--detach', '--name', 'before', '--replicas', '0', '--', '/bin/sleep', '1');

    // The leader alone on one side: a minority of one.
    const leaderId = (await nodesOf(m2)).find((n) => n.ManagerStatus?.Leader)!.ID;
    const minority = managers.find((m) => ids.get(m) === leaderId)!;
    const majority = managers.filter((m) => m !== minority);
    net.partition([minority.host!], [...majority.map((m) => m.host!), w1.host!]);

    const tried: string[] = [];
    const refusal = await waitFor('the minority to refuse a write for the lost quorum', async () => {
      const name = `minority-${tried.length}`;
      tried.push(name);
      const r = await create(minority, name);
      expect(r.code).not.toBe(0);
      return /quorum/.test(r.stderr) ? r.stderr : null;
    }, 30_000);
    expect(refusal).toContain('--force-new-cluster');

    // The majority elects a leader among itself and takes writes, on either of its managers.
    await waitFor('a write on the majority side', async () => (await create(majority[0]!, 'majority-0')).code === 0, 30_000);
    expect((await create(majority[1]!, 'majority-1')).code).toBe(0);
    const newLeader = (await nodesOf(majority[1]!)).find((n) => n.ManagerStatus?.Leader)?.ID;
    expect(majority.map((m) => ids.get(m))).toContain(newLeader);

    // Healed: the old leader follows and a read on it returns the majority's writes; none of the
    // writes it refused took effect anywhere.
    net.heal();
    await waitFor('the old leader to read the majority\'s writes', async () => {
      const names = await serviceNames(minority);
      return names.includes('majority-0') && names.includes('majority-1');
    }, 30_000);
    for (const m of managers) {
      const names = await serviceNames(m);
      for (const t of tried) expect(names).not.toContain(t);
    }
    await waitFor('a write through the old leader after healing', async () => (await create(minority, 'after-heal')).code === 0, 20_000);

    // One way: the leader's packets no longer reach one follower (the follower's still reach it).
    const leader2 = await leaderOf(managers, ids);
    const deaf = managers.find((m) => m !== leader2)!;
    const other = managers.find((m) => m !== leader2 && m !== deaf)!;
    net.dropOneWay(leader2.host!, deaf.host!);
    await waitFor('writes taken during the one-way drop', async () => (await create(other, 'one-way-0')).code === 0, 30_000);
    net.heal();
    await waitFor('the deaf follower to read the write once healed', async () => (await serviceNames(deaf)).includes('one-way-0'), 30_000);
  }), 120_000);
});
