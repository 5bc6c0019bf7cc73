/**
 * The control plane's output drives the data plane: the allocator's task attachments, read by
 * overlayPlan on each of two namespace "hosts", are enough for OverlayNetwork to connect a task on
 * one host to a task on the other. Everything the worker-side wiring will do, minus the wiring.
 * Root only (skipped with the reason otherwise); every namespace is deleted afterwards.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { Allocator } from '../../src/manager/allocator/index.ts';
import { makeNode, makeService, makeTask, settle } from '../../src/manager/testkit.ts';
import { hostRunner } from '../../src/mesh/netlink-cmd.ts';
import { NetnsLab } from '../../src/mesh/netns-testkit.ts';
import { OverlayNetwork } from '../../src/mesh/overlay.ts';
import { overlayPlan } from '../../src/mesh/overlay-plan.ts';
import { memoryStore } from '../../src/store/index.ts';

const lab = new NetnsLab();
const skip = lab.whyNot();
if (skip) console.warn(`skipping the allocated-overlay test: ${skip}`);

afterAll(async () => {
  await lab.cleanup();
});

describe.skipIf(!!skip)('allocated overlay across two namespace hosts', () => {
  test('a task on host A reaches a task on host B at the address the allocator gave it', async () => {
    const store = memoryStore();
    const hosts = [
      { node: makeNode({ id: 'node-a' }), ns: lab.ns('ha'), addr: '192.168.232.1' },
      { node: makeNode({ id: 'node-b' }), ns: lab.ns('hb'), addr: '192.168.232.2' },
    ];
    for (const h of hosts) h.node.Status.Addr = h.addr;
    const svc = makeService('web', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'app' }] } }, 'web');
    const tasks = [1, 2].map((slot) => makeTask('web', { Slot: slot, Spec: svc.Spec.TaskTemplate }));
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
    // What the scheduler and the agents would do: one task per node, running.
    await store.update((tx) => tasks.forEach((t, i) => {
      const cur = tx.get('tasks', t.ID)!;
      tx.update('tasks', { ...cur, NodeID: hosts[i]!.node.ID, Status: { ...cur.Status, State: 'running' } });
    }));
    const addrs = tasks.map((t) => store.get('tasks', t.ID)!.NetworksAttachments![0]!.Addresses[0]!);
    expect(addrs).toEqual(['10.0.1.3/24', '10.0.1.4/24']);

    await lab.add(...hosts.map((h) => h.ns), lab.ns('t0'), lab.ns('t1'));
    await lab.underlay(hosts[0]!.ns, hosts[1]!.ns, hosts[0]!.addr, hosts[1]!.addr);
    for (const h of hosts) {
      const plan = overlayPlan(h.node.ID, store.list('tasks'), store.list('nodes')).get('app')!;
      expect(plan.forwarding).toHaveLength(2);
      const ov = new OverlayNetwork({ ...plan.network, local: h.addr }, hostRunner({ name: h.ns }));
      await ov.ensure();
      await ov.setForwarding(plan.forwarding);
      for (const t of plan.local) await ov.attach({ ...t, netns: { name: lab.ns(`t${tasks.findIndex((x) => x.ID === t.taskId)}`) } });
    }
    const b = addrs[1]!.split('/')[0]!;
    await lab.echoServer(lab.ns('t1'), b, 7100);
    expect(await lab.echoOnce(lab.ns('t0'), b, 7100, 'across hosts')).toMatchObject({ code: 0, stdout: 'across hosts' });
  });
});
