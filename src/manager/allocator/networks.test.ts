import { afterEach, describe, expect, test } from 'bun:test';
import { encode } from '../../lib/codec.ts';
import { newId } from '../../lib/ids.ts';
import { type MemoryStore, memoryStore } from '../../store/index.ts';
import type { Network, Task } from '../../types/index.ts';
import { makeService, makeTask, settle, waitFor } from '../testkit.ts';
import { Allocator } from './allocator.ts';
import { AddressBook, allocateNetwork, allocateVips, VNI_FIRST } from './networks.ts';

let store: MemoryStore;
let alloc: Allocator | null = null;
afterEach(async () => {
  await alloc?.stop();
  alloc = null;
});

function makeNetwork(name: string, subnet?: string, id = newId()): Network {
  return { ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: name, Driver: 'overlay', IPAM: { Config: subnet ? [{ Subnet: subnet }] : [] } } };
}

const addr = (t: Task | undefined) => t?.NetworksAttachments?.[0]?.Addresses[0];

async function start(): Promise<void> {
  alloc = new Allocator({ store });
  alloc.start();
  await settle(store);
}

describe('allocateNetwork', () => {
  test('the pool gives the lowest free /24 from 10.0.1.0, skipping asked-for subnets; VXLAN ids are unique', () => {
    const asked = { ...makeNetwork('a', '10.0.1.0/25'), VNI: VNI_FIRST };
    const r = allocateNetwork(makeNetwork('b'), [asked]);
    expect(r).toEqual({ ok: true, value: { IPAM: { Config: [{ Subnet: '10.0.2.0/24', Gateway: '10.0.2.1' }] }, VNI: VNI_FIRST + 1 } });
    const own = allocateNetwork({ ...makeNetwork('c', '192.168.7.0/24'), Spec: { Name: 'c', Driver: 'overlay', IPAM: { Config: [{ Subnet: '192.168.7.0/24', Gateway: '192.168.7.254' }] } } }, []);
    expect(own).toMatchObject({ ok: true, value: { IPAM: { Config: [{ Subnet: '192.168.7.0/24', Gateway: '192.168.7.254' }] }, VNI: VNI_FIRST } });
    expect(allocateNetwork(makeNetwork('d'), [makeNetwork('all', '10.0.0.0/8')])).toMatchObject({ ok: false, message: expect.stringContaining('no free /24') });
  });
});

describe('AddressBook', () => {
  test('a service that cannot get a VIP on a new network keeps the VIPs it had (nobody else gets them)', () => {
    const n1 = { ...makeNetwork('n1', '10.7.1.0/29', 'n1'), IPAM: { Config: [{ Subnet: '10.7.1.0/29', Gateway: '10.7.1.1' }] }, VNI: 5000 };
    const n2 = { ...makeNetwork('n2', '10.7.2.0/29', 'n2'), IPAM: { Config: [{ Subnet: '10.7.2.0/29', Gateway: '10.7.2.1' }] }, VNI: 5001 };
    const s = makeService('s', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'n1' }, { Target: 'n2' }] } }, 's');
    s.Endpoint = { VirtualIPs: [{ NetworkID: 'n1', Addr: '10.7.1.2/29' }] };
    const full = [2, 3, 4, 5, 6].map((i) => makeTask('x', { state: 'running', NetworksAttachments: [{ Network: { ID: 'n2' } as any, Addresses: [`10.7.2.${i}/29`] }] }));
    const book = new AddressBook([n1, n2], [s], full);
    expect(allocateVips(s, book)).toMatchObject({ ok: false, message: expect.stringContaining('network "n2" has no free address') });
    expect(book.take('n1')).toBe('10.7.1.3/29');
  });
});

describe('Allocator: networks', () => {
  test('networks get subnets, services a VIP per network, tasks distinct addresses recorded in Docker shape', async () => {
    store = memoryStore();
    const n1 = makeNetwork('front', undefined, 'n1');
    const n2 = makeNetwork('back', '10.9.0.0/24', 'n2');
    const web = makeService('web', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'n1' }, { Target: 'n2' }] } }, 'web');
    const rr = makeService('rr', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'n1' }] }, EndpointSpec: { Mode: 'dnsrr' } }, 'rr');
    const tasks = [1, 2, 3].map((slot) => makeTask('web', { Slot: slot, Spec: web.Spec.TaskTemplate }));
    const plain = makeTask('rr', { Spec: rr.Spec.TaskTemplate });
    await store.update((tx) => {
      tx.create('networks', n1);
      tx.create('networks', n2);
      tx.create('services', web);
      tx.create('services', rr);
      for (const t of [...tasks, plain]) tx.create('tasks', t);
    });
    await start();
    expect(store.get('networks', 'n1')).toMatchObject({ IPAM: { Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] }, VNI: VNI_FIRST });
    expect(store.get('networks', 'n2')).toMatchObject({ IPAM: { Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] }, VNI: VNI_FIRST + 1 });
    expect(store.get('services', 'web')!.Endpoint!.VirtualIPs).toEqual([{ NetworkID: 'n1', Addr: '10.0.1.2/24' }, { NetworkID: 'n2', Addr: '10.9.0.2/24' }]);
    expect(store.get('services', 'rr')!.Endpoint!.VirtualIPs).toBeUndefined();
    const got = tasks.map((t) => store.get('tasks', t.ID)!);
    expect(got.every((t) => t.Status.State === 'pending')).toBe(true);
    const first = got[0]!.NetworksAttachments!;
    expect(first.map((a) => a.Network.ID)).toEqual(['n1', 'n2']);
    expect(first[0]!.Network).toMatchObject({ Spec: { Name: 'front' }, DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': String(VNI_FIRST) } }, IPAMOptions: { Configs: [{ Subnet: '10.0.1.0/24' }] } });
    const onN1 = [...got, store.get('tasks', plain.ID)!].map(addr).sort();
    expect(onN1).toEqual(['10.0.1.3/24', '10.0.1.4/24', '10.0.1.5/24', '10.0.1.6/24']);
    // A second pass changes nothing: VIPs and addresses are kept.
    const idx = store.index;
    const cur = store.get('services', 'web')!;
    await store.update((tx) => tx.update('services', { ...cur, Spec: { ...cur.Spec, Labels: { x: '1' } } }));
    await settle(store);
    expect(store.index).toBe(idx + 1);
  });

  test('exhaustion keeps a task new with the reason; a finished task frees its address for it', async () => {
    store = memoryStore();
    const small = makeNetwork('small', '10.7.0.0/29', 'small'); // hosts .1-.6: gateway, VIP, 4 tasks
    const svc = makeService('s', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'small' }] } }, 's');
    const tasks = [1, 2, 3, 4, 5].map((slot) => makeTask('s', { Slot: slot, Spec: svc.Spec.TaskTemplate }));
    await store.update((tx) => {
      tx.create('networks', small);
      tx.create('services', svc);
      tasks.forEach((t) => tx.create('tasks', t));
    });
    await start();
    const states = () => tasks.map((t) => store.get('tasks', t.ID)!.Status.State);
    expect(states().filter((s) => s === 'pending')).toHaveLength(4);
    const stuck = tasks.find((t) => store.get('tasks', t.ID)!.Status.State === 'new')!;
    expect(store.get('tasks', stuck.ID)!.Status.Err).toBe('cannot allocate task: network "small" has no free address left in 10.7.0.0/29; remove tasks from it or create a larger network');
    const done = store.get('tasks', tasks.find((t) => t.ID !== stuck.ID)!.ID)!;
    await store.update((tx) => tx.update('tasks', { ...done, Status: { ...done.Status, State: 'failed' } }));
    await waitFor(() => store.get('tasks', stuck.ID)!.Status.State === 'pending', 'the waiting task to get the freed address');
    expect(addr(store.get('tasks', stuck.ID))).toBe(addr(done));
  });

  test('no address is held by two live tasks under churn (seeded)', async () => {
    store = memoryStore();
    const net = makeNetwork('churn', '10.8.0.0/28', 'net'); // 14 hosts: gateway, VIP, 12 tasks
    const svc = makeService('c', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'net' }] } }, 'c');
    await store.update((tx) => {
      tx.create('networks', net);
      tx.create('services', svc);
    });
    await start();
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let full = 0;
    for (let round = 0; round < 60; round++) {
      await store.update((tx) => {
        for (let i = rand(6); i > 0; i--) tx.create('tasks', makeTask('c', { Spec: svc.Spec.TaskTemplate }));
        for (const t of store.list('tasks')) {
          const r = rand(10);
          if (r === 0) tx.delete('tasks', t.ID); // the reaper
          else if (r === 1 && t.Status.State === 'pending') tx.update('tasks', { ...t, Status: { ...t.Status, State: 'failed' } });
        }
      });
      await settle(store);
      const live = store.list('tasks').filter((t) => t.Status.State !== 'failed' && t.Status.State !== 'new');
      const held = live.map(addr);
      expect(new Set(held).size).toBe(held.length);
      expect(held).not.toContain('10.8.0.1/28');
      expect(held).not.toContain(store.get('services', 'c')!.Endpoint!.VirtualIPs![0]!.Addr);
      // Every waiting task waits only because the network is full.
      const waiting = store.list('tasks').filter((t) => t.Status.State === 'new');
      if (waiting.length) expect(live.length).toBe(12);
      if (waiting.length) full++;
    }
    expect(full).toBeGreaterThan(0); // the churn did reach exhaustion
  });

  test('a service naming a network that does not exist (data from before the store refused it) keeps its tasks new with the reason', async () => {
    store = memoryStore();
    const svc = makeService('lost', { TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'gone' }] } }, 'lost');
    const t = makeTask('lost', { Spec: svc.Spec.TaskTemplate });
    store.restore(encode({ index: 0, tables: { services: [svc], tasks: [t] } }), 0);
    await start();
    expect(store.get('tasks', t.ID)!.Status).toMatchObject({ State: 'new', Err: 'cannot allocate service "lost": network gone is not allocated yet or no longer exists' });
  });
});
