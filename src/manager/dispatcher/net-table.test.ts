import { afterEach, expect, test } from 'bun:test';
import { ManualClock } from '../../../plugins/mock/clock.ts';
import { memoryStore, type MemoryStore } from '../../store/index.ts';
import type { Network, Service, Task } from '../../types/index.ts';
import { Dispatcher, netTableFlushInterval } from './dispatcher.ts';
import { NetTableRows } from './net-delta.ts';
import { NetTableBuilder, netTable } from './net-table.ts';
import { addNode, makeTask, RawWorker, waitFor } from './testkit.ts';

let dispatcher: Dispatcher | null = null;
afterEach(async () => { await dispatcher?.stop(); dispatcher = null; });

/** A small deterministic generator: the same run of changes every time. */
function lcg(seed: number): (n: number) => number {
  let x = seed;
  return (n) => { x = (x * 1103515245 + 12345) % 2 ** 31; return x % n; };
}

function network(id: string, name: string, n: number): Network {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: name, Driver: 'overlay' }, VNI: 4096 + n,
    IPAM: { Driver: { Name: 'default' }, Config: [{ Subnet: `10.${n}.0.0/24`, Gateway: `10.${n}.0.1` }] },
  } as never;
}

function service(id: string, name: string, net: string, vip: string | null): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: name, TaskTemplate: { ProcessSpec: { Command: ['x'] } } as never },
    ...(vip ? { Endpoint: { VirtualIPs: [{ NetworkID: net, Addr: `${vip}/24` }] } } : {}),
  } as never;
}

function backend(serviceId: string, net: string, addr: string, state: 'running' | 'assigned'): Task {
  return { ...makeTask('n0', { state }), ServiceID: serviceId, NetworksAttachments: [{ Network: { ID: net } as never, Addresses: [`${addr}/24`] }] };
}

/** Random creates, updates and deletes of networks, services, tasks and nodes' peer ids. */
let seq = 0;
async function churn(store: MemoryStore, rnd: (n: number) => number, steps: number): Promise<void> {
  for (let step = 0; step < steps; step++) {
    const i = seq++;
    await store.update((tx) => {
      const k = rnd(7);
      const nets = store.list('networks');
      const net = nets[rnd(Math.max(1, nets.length))]?.ID ?? 'none';
      if (k === 0) tx.create('networks', network(`net${i}`, `net-${rnd(1000)}-${i}`, i % 250));
      else if (k === 1) tx.create('services', service(`svc${i}`, `svc-${rnd(1000)}-${i}`, net, rnd(2) ? `10.9.${i % 250}.2` : null));
      else if (k === 2) {
        const svcs = store.list('services');
        const s = svcs[rnd(Math.max(1, svcs.length))];
        if (s) tx.create('tasks', backend(s.ID, net, `10.8.${i % 250}.${rnd(250)}`, rnd(3) ? 'running' : 'assigned'));
      } else if (k === 3) {
        const ts = store.list('tasks');
        const t = ts[rnd(Math.max(1, ts.length))];
        if (t) tx.update('tasks', { ...t, Status: { ...t.Status, State: t.Status.State === 'running' ? 'failed' : 'running' } });
      } else if (k === 4) {
        const ts = store.list('tasks');
        const t = ts[rnd(Math.max(1, ts.length))];
        if (t) tx.delete('tasks', t.ID);
      } else if (k === 5) {
        const ns = store.list('nodes');
        const n = ns[rnd(Math.max(1, ns.length))];
        if (n) tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: rnd(4) ? { PeerID: `peer-${rnd(100)}` } as never : undefined } });
      } else {
        const svcs = store.list('services');
        const s = svcs[rnd(Math.max(1, svcs.length))];
        if (s && rnd(3) === 0) tx.delete('services', s.ID);
        else if (s) tx.update('services', { ...s, Spec: { ...s.Spec, Name: `renamed-${i}` } });
      }
    });
  }
}

test('applying each flushed delta to the first table gives the table a full rebuild gives', async () => {
  const store = memoryStore();
  for (let i = 0; i < 5; i++) await addNode(store);
  const builder = new NetTableBuilder(store);
  const unwatch = store.watch((ev) => { if (ev.kind !== 'commit') builder.note(ev); });
  const rows = NetTableRows.from(builder.full());
  expect(rows.table()).toEqual(netTable(store));
  const rnd = lcg(7);
  let deltas = 0;
  for (let round = 0; round < 40; round++) {
    await churn(store, rnd, 1 + rnd(6));
    if (rnd(4) === 0) await addNode(store);
    const d = builder.flush();
    if (d) { rows.apply(d); deltas++; }
    expect(rows.table()).toEqual(netTable(store));
    expect(builder.full()).toEqual(netTable(store));
  }
  unwatch();
  expect(deltas).toBeGreaterThan(20);
});

test('a delta carries only the rows that changed: a join sends its host, not the table', async () => {
  const store = memoryStore();
  await store.update((tx) => {
    tx.create('networks', network('net', 'overlay', 1));
    for (let i = 0; i < 50; i++) tx.create('services', service(`s${i}`, `s${i}`, 'net', `10.1.0.${i + 2}`));
  });
  const builder = new NetTableBuilder(store);
  const unwatch = store.watch((ev) => { if (ev.kind !== 'commit') builder.note(ev); });
  expect(builder.full().services).toHaveLength(50);
  const id = await addNode(store);
  await store.update((tx) => {
    const n = tx.get('nodes', id)!;
    tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: { PeerID: 'peer-new' } as never } });
  });
  expect(builder.flush()).toEqual({ services: [], removedServices: [], hosts: [{ node: id, peer: 'peer-new' }], removedHosts: [] });
  expect(builder.flush()).toBeNull(); // nothing since
  unwatch();
});

test('a worker that accepts networks.delta gets the table once, then deltas that rebuild it', async () => {
  const store = memoryStore();
  const node = await addNode(store);
  dispatcher = new Dispatcher({ store, netTableFlushMs: 0 });
  dispatcher.start();
  const w = new RawWorker(dispatcher);
  await w.register(node, ['networks', 'networks.delta']);
  await waitFor(() => w.of('networks').length === 1, 'the first table');
  const rows = NetTableRows.from(w.of('networks')[0]!);
  const rnd = lcg(11);
  await churn(store, rnd, 30);
  await addNode(store);
  const want = JSON.stringify(netTable(store));
  await waitFor(() => {
    const r = NetTableRows.from(w.of('networks')[0]!);
    for (const d of w.of('networks.delta')) r.apply(d);
    return JSON.stringify(r.table()) === want;
  }, 'deltas that rebuild the table');
  expect(w.of('networks')).toHaveLength(1);
  expect(w.of('networks.delta').length).toBeGreaterThan(0);
  for (const d of w.of('networks.delta')) rows.apply(d);
  expect(rows.table()).toEqual(netTable(store));
});

test('a worker that does not accept networks.delta gets the whole table each time', async () => {
  const store = memoryStore();
  const node = await addNode(store);
  dispatcher = new Dispatcher({ store, netTableFlushMs: 0 });
  dispatcher.start();
  const w = new RawWorker(dispatcher);
  await w.register(node, ['networks']);
  await waitFor(() => w.of('networks').length === 1, 'the first table');
  await store.update((tx) => tx.create('networks', network('net', 'overlay', 1)));
  await waitFor(() => w.of('networks').length === 2, 'the table again');
  expect(w.of('networks')[1]).toEqual(netTable(store));
  expect(w.of('networks.delta')).toHaveLength(0);
});

/** Lets `n` turns of the event loop go by (frames in flight on the memory connections arrive). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

test('the wait between network-table flushes grows with the sessions: 1 ms each, within [100, 1000] ms', async () => {
  expect([0, 1, 100, 250, 1000, 5000].map(netTableFlushInterval)).toEqual([100, 100, 100, 250, 1000, 1000]);
  const store = memoryStore();
  const clock = new ManualClock(1_000_000);
  dispatcher = new Dispatcher({ store, clock, random: () => 0 });
  dispatcher.start();
  const workers: RawWorker[] = [];
  for (let i = 0; i < 250; i++) {
    const w = new RawWorker(dispatcher);
    await w.register(await addNode(store), ['networks', 'networks.delta']);
    workers.push(w);
  }
  const first = workers[0]!;
  const last = workers[249]!;
  await waitFor(() => last.of('networks').length === 1, 'the last worker\'s table');
  clock.advance(1_000); // the joins' own flushes
  await turns(20);
  const before = first.of('networks.delta').length;
  // One more host: its row waits 250 ms with 250 sessions (it waited 100 before).
  const id = await addNode(store);
  await store.update((tx) => {
    const n = tx.get('nodes', id)!;
    tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: { PeerID: 'peer-late' } as never } });
  });
  clock.advance(249);
  await turns(20);
  expect(first.of('networks.delta').length).toBe(before);
  clock.advance(1);
  await waitFor(() => first.of('networks.delta').length === before + 1 && last.of('networks.delta').length >= 1, 'the delta after 250 ms');
  expect(first.of('networks.delta').at(-1)!.hosts).toContainEqual({ node: id, peer: 'peer-late' });
});
