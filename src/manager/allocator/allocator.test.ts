import { afterEach, describe, expect, test } from 'bun:test';
import { ConflictError } from '../../lib/errors.ts';
import { type MemoryStore, memoryStore } from '../../store/index.ts';
import type { Service, Task } from '../../types/index.ts';
import { makeService, makeTask, settle, waitFor } from '../testkit.ts';
import { Allocator } from './allocator.ts';
import { allocatePorts, checkPortConflict, findPortConflict, PUBLISHED_PORT_FIRST } from './ports.ts';

let store: MemoryStore;
let alloc: Allocator | null = null;
afterEach(async () => {
  await alloc?.stop();
  alloc = null;
});

async function seed(services: Service[], tasks: Task[] = []) {
  await store.update((tx) => {
    for (const s of services) tx.create('services', s);
    for (const t of tasks) tx.create('tasks', t);
  });
}

describe('ports', () => {
  test('findPortConflict: explicit ports against allocated and requested ports of other services', async () => {
    store = memoryStore();
    const web = makeService('web', { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } }, 'web');
    const api = makeService('api', {}, 'api');
    api.Endpoint = { Ports: [{ TargetPort: 80, PublishedPort: 30000, Protocol: 'tcp', PublishMode: 'ingress' }] };
    await seed([web, api]);
    const spec = (port: number, protocol: 'tcp' | 'udp' = 'tcp') => makeService('new', { EndpointSpec: { Ports: [{ TargetPort: 1, PublishedPort: port, Protocol: protocol }] } }).Spec;
    expect(findPortConflict(store, spec(8080))).toMatchObject({ port: 8080, serviceId: 'web', serviceName: 'web' });
    expect(findPortConflict(store, spec(30000))).toMatchObject({ port: 30000, serviceId: 'api' });
    expect(findPortConflict(store, spec(8080, 'udp'))).toBeNull();
    expect(findPortConflict(store, spec(8081))).toBeNull();
    expect(findPortConflict(store, spec(8080), 'web')).toBeNull(); // updating web itself
    expect(findPortConflict(store, makeService('x', { EndpointSpec: { Ports: [{ TargetPort: 1 }] } }).Spec)).toBeNull();
    const twice = makeService('x', { EndpointSpec: { Ports: [{ TargetPort: 1, PublishedPort: 9 }, { TargetPort: 2, PublishedPort: 9 }] } }).Spec;
    expect(findPortConflict(store, twice)?.message).toContain('published twice');
    expect(() => checkPortConflict(store, spec(8080))).toThrow(ConflictError);
    expect(() => checkPortConflict(store, spec(8080))).toThrow(/8080\/tcp is already in use by service "web"/);
  });

  test('allocatePorts: lowest free port, kept across updates, explicit ports first', () => {
    const s = makeService('a', { EndpointSpec: { Ports: [{ TargetPort: 80 }, { TargetPort: 443, PublishedPort: PUBLISHED_PORT_FIRST }] } });
    const r = allocatePorts(s, new Set([`${PUBLISHED_PORT_FIRST + 1}/tcp`]));
    expect(r).toEqual({
      ok: true,
      ports: [
        { TargetPort: 80, Protocol: 'tcp', PublishMode: 'ingress', PublishedPort: PUBLISHED_PORT_FIRST + 2 },
        { TargetPort: 443, Protocol: 'tcp', PublishMode: 'ingress', PublishedPort: PUBLISHED_PORT_FIRST },
      ],
    });
    s.Endpoint = { Ports: [{ TargetPort: 80, Protocol: 'tcp', PublishedPort: 31000 }] };
    expect(allocatePorts(s, new Set())).toMatchObject({ ok: true, ports: [{ PublishedPort: 31000 }, { PublishedPort: PUBLISHED_PORT_FIRST }] });
    expect(allocatePorts(s, new Set([`${PUBLISHED_PORT_FIRST}/tcp`]))).toMatchObject({ ok: false });
  });
});

describe('Allocator', () => {
  test('allocates distinct ports to services and moves their new tasks to pending', async () => {
    store = memoryStore();
    const a = makeService('a', { EndpointSpec: { Ports: [{ TargetPort: 80 }] } }, 'a');
    const b = makeService('b', { EndpointSpec: { Ports: [{ TargetPort: 80 }, { TargetPort: 81, PublishedPort: 8081 }] } }, 'b');
    const tasks = [makeTask('a'), makeTask('b'), makeTask('a', { DesiredState: 'shutdown' }), makeTask('gone')];
    await seed([a, b], tasks);
    alloc = new Allocator({ store });
    alloc.start();
    await waitFor(() => store.get('tasks', tasks[1]!.ID)!.Status.State === 'pending', 'pending');
    await settle(store);
    const ports = (id: string) => store.get('services', id)!.Endpoint!.Ports!.map((p) => p.PublishedPort);
    expect(ports('a')).toEqual([PUBLISHED_PORT_FIRST]);
    expect(ports('b')).toEqual([PUBLISHED_PORT_FIRST + 1, 8081]);
    expect(tasks.map((t) => store.get('tasks', t.ID)!.Status.State)).toEqual(['pending', 'pending', 'new', 'new']);
    // Nothing more to do: another pass writes nothing.
    const idx = store.index;
    const t = store.get('tasks', tasks[0]!.ID)!;
    await store.update((tx) => tx.update('tasks', { ...t, Labels: { x: '1' } }));
    await settle(store);
    expect(store.index).toBe(idx + 1);
  });

  test('a service whose explicit port is taken keeps its tasks new with the reason', async () => {
    store = memoryStore();
    const a = makeService('a', { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } }, 'a');
    await seed([a]);
    alloc = new Allocator({ store });
    alloc.start();
    await waitFor(() => !!store.get('services', 'a')!.Endpoint);
    const b = makeService('b', { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } }, 'b');
    const t = makeTask('b');
    await seed([b], [t]);
    await waitFor(() => !!store.get('tasks', t.ID)!.Status.Err, 'an explanation');
    expect(store.get('tasks', t.ID)!.Status).toMatchObject({ State: 'new', Err: 'cannot allocate service "b": port 8080/tcp is already in use by another service' });
    const cur = store.get('services', 'a')!;
    await store.update((tx) => tx.delete('services', cur.ID));
    await waitFor(() => store.get('tasks', t.ID)!.Status.State === 'pending', 'pending once the port is free');
    expect(store.get('services', 'b')!.Endpoint!.Ports![0]!.PublishedPort).toBe(8080);
  });
});
