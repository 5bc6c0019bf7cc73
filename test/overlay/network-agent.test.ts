/**
 * NetworkAgent across two namespace hosts (test/harness): the allocator's attachments prepared on each
 * host give process tasks a namespace on the overlay; a task on host A reaches a task on host B at its
 * address and at its service's VIP (kernel DNAT in A's namespace, spread over the running tasks);
 * release takes the namespace away. Root only (skipped with the reason otherwise); everything is deleted.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Allocator } from '../../src/manager/allocator/index.ts';
import { netTable } from '../../src/manager/dispatcher/net-table.ts';
import { makeNode, makeService, makeTask, settle } from '../../src/manager/testkit.ts';
import { hostRunner } from '../../src/mesh/netlink-cmd.ts';
import { NetworkAgent, sandboxName } from '../../src/mesh/network-agent.ts';
import type { ForwardingEntry } from '../../src/mesh/overlay.ts';
import { memoryStore } from '../../src/store/index.ts';
import { disposeAll, NetnsHosts, netnsUnavailable, tcpEcho, tcpSay, vxlanUnavailable } from '../harness/index.ts';

const skip = netnsUnavailable() ?? vxlanUnavailable();
if (skip) console.warn(`skipping the network-agent test: ${skip}`);
/** In every task id of this run, so that its task namespaces (sandboxName) are its own. */
const tag = randomBytes(3).toString('hex');
const agents: NetworkAgent[] = [];

afterAll(async () => {
  for (const a of agents) await a.close();
  for (const n of (await hostRunner()(['ip', 'netns', 'list'])).stdout.split('\n')) {
    const name = n.split(' ')[0]!;
    if (name.startsWith('shtask-') && name.includes(tag)) await hostRunner()(['ip', 'netns', 'del', name]);
  }
  disposeAll();
});

/** The links in a namespace, by name. */
async function links(netns: string): Promise<string[]> {
  const r = await hostRunner()(['ip', '-n', netns, '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}

describe.skipIf(!!skip)('NetworkAgent on two namespace hosts', () => {
  test('process tasks reach each other by address and by VIP; release removes the namespace', async () => {
    const store = memoryStore();
    // Kept until afterAll: the agents are closed there, inside these namespaces.
    const net = await NetnsHosts.create({ hosts: 2, prefix: '192.168.233' });
    const hosts = net.hosts.map((h, i) => ({ node: makeNode({ id: `node-${'ab'[i]}` }), ns: h.netns, addr: h.ip }));
    const svc = makeService('web', { TaskTemplate: { Runtime: 'process', Networks: [{ Target: 'app' }] } }, 'web');
    const tasks = [1, 2, 3].map((slot) => makeTask('web', { ID: `${tag}-task-${slot}`, Slot: slot, Spec: svc.Spec.TaskTemplate }));
    await store.update((tx) => {
      hosts.forEach((h) => tx.create('nodes', h.node));
      tx.create('networks', { ID: 'app', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'app', Driver: 'overlay', IPAM: { Config: [] } } });
      tx.create('services', svc);
      tasks.forEach((t) => tx.create('tasks', t));
    });
    const alloc = new Allocator({ store });
    alloc.start();
    await settle(store);
    await alloc.stop();
    // Task 1 on host A, tasks 2 and 3 on host B; all running.
    const where = [0, 1, 1];
    await store.update((tx) => tasks.forEach((t, i) => {
      const cur = tx.get('tasks', t.ID)!;
      tx.update('tasks', { ...cur, NodeID: hosts[where[i]!]!.node.ID, Status: { ...cur.Status, State: 'running' }, DesiredState: 'running' });
    }));
    const placed = tasks.map((t) => store.get('tasks', t.ID)!);
    const addr = placed.map((t) => t.NetworksAttachments![0]!.Addresses[0]!.split('/')[0]!);
    const table = netTable(store);
    expect(table.networks).toHaveLength(1);
    const vip = table.services[0]!.vips[0]!.addr;
    expect(table.services[0]!.tasks.map((t) => t.addr).sort()).toEqual([...addr].sort());

    // What gossip would say: each task address behind its host.
    const remote = (): ForwardingEntry[] => placed.map((t, i) => ({ hostAddr: hosts[where[i]!]!.addr, taskAddr: addr[i]! }));
    const logs: string[] = [];
    const byHost = hosts.map((h) => {
      const a = new NetworkAgent({ underlay: () => h.addr, remote, run: hostRunner({ name: h.ns }), log: (m) => logs.push(m) });
      agents.push(a);
      return a;
    });
    for (const a of byHost) await a.setTable(table);
    const nets = await Promise.all(placed.map((t, i) => byHost[where[i]!]!.prepare(t, false)));
    for (const [i, n] of nets.entries()) {
      expect(n!.netns).toBe(`/run/netns/${sandboxName(placed[i]!.ID)}`);
      expect(n!.dns).toEqual([table.networks[0]!.gateway]);
      expect(n!.attachments[0]!.address).toBe(placed[i]!.NetworksAttachments![0]!.Addresses[0]!);
    }
    expect(byHost[1]!.localNets()).toEqual({ app: [addr[1]!, addr[2]!].sort() });

    const sb = placed.map((t) => sandboxName(t.ID));
    for (const n of sb) await tcpEcho(net, n, '0.0.0.0', 7200);
    // By address, across hosts.
    expect(await tcpSay(net, sb[0]!, addr[1]!, 7200, 'by address')).toMatchObject({ code: 0, stdout: 'by address' });
    // By VIP: DNAT in task 1's namespace to one of the service's three running tasks (itself included,
    // as in Swarm), any port.
    for (let i = 0; i < 6; i++) {
      const code = `const t = setTimeout(() => process.exit(4), 3000);
        await Bun.connect({ hostname: ${JSON.stringify(vip)}, port: 7200, socket: {
          open(s) { s.write('x'); }, data(s, d) { process.stdout.write(d.toString()); clearTimeout(t); s.end(); process.exit(0); },
          connectError() { process.exit(3); }, error() { process.exit(2); } } });`;
      const r = await hostRunner({ name: sb[0]! })([process.execPath, '-e', code]);
      expect(r).toMatchObject({ code: 0, stdout: 'x' });
    }
    // The spread is the rules' (1/3, then 1/2 of the rest, then the last).
    const rules = byHost[0]!.vipRules(['app']);
    const sorted = [...addr].sort();
    expect(rules).toContain(`-d ${vip}/32 -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination ${sorted[0]}`);
    expect(rules).toContain(`-d ${vip}/32 -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination ${sorted[1]}`);
    expect(rules).toContain(`-d ${vip}/32 -j DNAT --to-destination ${sorted[2]}`);

    await byHost[0]!.release(placed[0]!.ID);
    const left = (await hostRunner()(['ip', 'netns', 'list'])).stdout;
    expect(left).not.toContain(sb[0]!);
    expect(byHost[0]!.localNets()).toEqual({});
  }, 60_000);

  test('a later daemon removes the networks the cluster deleted meanwhile (remembered in its data dir, used here or not)', async () => {
    const ns = (await NetnsHosts.create({ hosts: 1, prefix: '192.168.234' })).hosts[0]!.netns;
    const stateFile = join(mkdtempSync(join(tmpdir(), 'shoal-netstate-')), 'networks.json');
    const run = hostRunner({ name: ns });
    const gone = { id: `gone-${tag}`, name: 'gone', subnet: '10.0.9.0/24', gateway: '10.0.9.1', vni: 4999 };
    const task = makeTask('s', { ID: `${tag}-t9`, Spec: { Runtime: 'mock' } });
    task.NetworksAttachments = [{
      Network: { ID: gone.id, Spec: { Name: gone.name }, DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': String(gone.vni) } }, IPAMOptions: { Configs: [{ Subnet: gone.subnet, Gateway: gone.gateway }] } },
      Addresses: ['10.0.9.5/24'],
    }];
    const first = new NetworkAgent({ underlay: () => '192.168.234.1', remote: () => [], run, stateFile, log: () => {} });
    agents.push(first);
    await first.setTable({ networks: [{ ...gone }], services: [] });
    await first.prepare(task, true);
    const bridge = first.networks()[0]!.bridge;
    expect(await links(ns)).toContain(bridge);
    await first.close(); // the daemon stops; the network is deleted from the cluster while it is down
    const second = new NetworkAgent({ underlay: () => '192.168.234.1', remote: () => [], run, stateFile, log: () => {} });
    agents.push(second);
    // Still in the cluster, no task here: kept, and still remembered through another restart.
    await second.setTable({ networks: [{ ...gone }], services: [] });
    expect(await links(ns)).toContain(bridge);
    await second.close();
    const third = new NetworkAgent({ underlay: () => '192.168.234.1', remote: () => [], run, stateFile, log: () => {} });
    agents.push(third);
    await third.setTable({ networks: [], services: [] });
    expect(await links(ns)).not.toContain(bridge);
  });

  test('release of a task this agent never prepared (stopped with the previous daemon) removes its namespace', async () => {
    const id = `${tag}-stopped-task`;
    const name = sandboxName(id);
    expect((await hostRunner()(['ip', 'netns', 'add', name])).code).toBe(0);
    const agent = new NetworkAgent({ underlay: () => undefined, remote: () => [] });
    agents.push(agent);
    await agent.release(id);
    expect((await hostRunner()(['ip', 'netns', 'list'])).stdout).not.toContain(name);
    await agent.release(id); // nothing left: still fine
  });
});
