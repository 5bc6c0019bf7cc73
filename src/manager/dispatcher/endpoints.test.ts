import { afterEach, expect, test } from 'bun:test';
import { ManualClock } from '../../../plugins/mock/clock.ts';
import { memoryStore, type MemoryStore } from '../../store/index.ts';
import type { Service } from '../../types/index.ts';
import { Dispatcher } from './dispatcher.ts';
import { endpointTable } from './endpoints.ts';
import { addNode, addTasks, changeTask, makeTask, RawWorker, waitFor } from './testkit.ts';

let store: MemoryStore;
let dispatcher: Dispatcher | null = null;

afterEach(async () => { await dispatcher?.stop(); dispatcher = null; });

function service(id: string, name: string, ports: Service['Endpoint']): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: name, TaskTemplate: { ProcessSpec: { Command: ['x'] } } as never },
    Endpoint: ports,
  };
}

async function setAddr(nodeId: string, addr: string): Promise<void> {
  await store.update((tx) => {
    const n = tx.get('nodes', nodeId)!;
    tx.update('nodes', { ...n, Description: { ...n.Description, Addr: addr } });
  });
}

test('the table lists published ports with their running host-network tasks at their node address', async () => {
  store = memoryStore();
  const a = await addNode(store);
  const b = await addNode(store);
  await setAddr(a, '10.0.0.1');
  await store.update((tx) => {
    const n = tx.get('nodes', b)!;
    tx.update('nodes', { ...n, Status: { ...n.Status, Addr: '10.0.0.2' } }); // no description address: the session's
  });
  await store.update((tx) => {
    tx.create('services', service('svc', 'web', { Ports: [{ TargetPort: 80, PublishedPort: 8080, Protocol: 'tcp' }, { TargetPort: 53, PublishedPort: 5353, Protocol: 'udp', PublishMode: 'host' }] }));
    tx.create('services', service('other', 'quiet', { Ports: [{ TargetPort: 1 }] })); // not published yet
  });
  const container = { ...makeTask(a, { state: 'running' }), Spec: { ContainerSpec: { Image: 'x' } } as never };
  await addTasks(store, [
    makeTask(a, { state: 'running' }), makeTask(b, { state: 'running' }),
    makeTask(b, { state: 'starting' }), makeTask(a, { state: 'running', desired: 'shutdown' }), container,
  ]);
  const table = endpointTable(store);
  expect(table.map((p) => [p.service, p.port, p.protocol, p.target, p.mode])).toEqual([
    ['web', 8080, 'tcp', 80, 'ingress'], ['web', 5353, 'udp', 53, 'host'],
  ]);
  expect(table[0]!.backends).toEqual([
    { node: a, addr: '10.0.0.1', port: 80, healthy: true },
    { node: b, addr: '10.0.0.2', port: 80, healthy: true },
  ]);
});

test('every session gets the table after registering, and again when a task starts or stops', async () => {
  store = memoryStore();
  const clock = new ManualClock(1_000_000);
  dispatcher = new Dispatcher({ store, clock, random: () => 0, heartbeatPeriodMs: 1000 });
  dispatcher.start();
  const a = await addNode(store);
  const b = await addNode(store);
  await setAddr(b, '10.0.0.2');
  await store.update((tx) => tx.create('services', service('svc', 'web', { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] })));
  const wa = new RawWorker(dispatcher);
  await wa.register(a, ['endpoints']);
  const wb = new RawWorker(dispatcher);
  await wb.register(b, ['endpoints']);
  const old = new RawWorker(dispatcher); // an older worker: lists nothing, gets no endpoints frame
  await old.register(await addNode(store));
  await waitFor(() => wa.of('endpoints').length === 1 && wb.of('endpoints').length === 1, 'first tables');
  expect(wa.of('endpoints')[0]!.ports[0]!.backends).toEqual([]);

  const [t] = await addTasks(store, [makeTask(b)]);
  await changeTask(store, t!.ID, (x) => ({ ...x, Status: { ...x.Status, State: 'starting' } }));
  expect(wa.of('endpoints')).toHaveLength(1); // not running yet: nothing to send
  await changeTask(store, t!.ID, (x) => ({ ...x, Status: { ...x.Status, State: 'running' } }));
  await waitFor(() => wa.of('endpoints').length === 2, 'table with the task');
  expect(wa.of('endpoints')[1]!.ports[0]!.backends).toEqual([{ node: b, addr: '10.0.0.2', port: 80, healthy: true }]);
  await changeTask(store, t!.ID, (x) => ({ ...x, Status: { ...x.Status, State: 'failed' } }));
  await waitFor(() => wa.of('endpoints').length === 3 && wb.of('endpoints').length === 3, 'table without it');
  expect(wb.of('endpoints')[2]!.ports[0]!.backends).toEqual([]);
  expect(old.of('endpoints')).toEqual([]);
  expect(old.closedReason).toBeNull();
});
