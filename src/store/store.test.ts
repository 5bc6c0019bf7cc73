import { beforeEach, describe, expect, test } from 'bun:test';
import { ConflictError, NotFoundError } from '../lib/errors.ts';
import type { Service, Task } from '../types/index.ts';
import type { ChangeEvent } from './actions.ts';
import { encode } from '../lib/codec.ts';
import { memoryStore } from './memory-log.ts';
import { BatchTooLargeError, MemoryStore } from './store.ts';

function service(id: string, name: string): Service {
  return { ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: name, TaskTemplate: { Runtime: 'mock' } } };
}

// The store on a durable log (the raft host), across restarts and snapshots: src/daemon/state.test.ts.
let store: MemoryStore;

beforeEach(() => {
  store = memoryStore();
});

describe('MemoryStore', () => {
  test('a created object gets the log index as its version and timestamps from the batch', async () => {
    await store.update((tx) => tx.create('services', service('s1', 'web')));
    const s = store.get('services', 's1')!;
    expect(s.Version.Index).toBe(1);
    expect(s.CreatedAt).toBe(s.UpdatedAt);
    expect(Date.parse(s.CreatedAt)).toBeGreaterThan(0);
  });

  test('an update with the version that was read succeeds and bumps the version', async () => {
    await store.update((tx) => tx.create('services', service('s1', 'web')));
    const s = store.get('services', 's1')!;
    await store.update((tx) => tx.update('services', { ...s, Spec: { ...s.Spec, Labels: { a: 'b' } } }));
    const s2 = store.get('services', 's1')!;
    expect(s2.Version.Index).toBe(2);
    expect(s2.Spec.Labels).toEqual({ a: 'b' });
    expect(s2.CreatedAt).toBe(s.CreatedAt);
  });

  test('an update with a stale version fails with ConflictError and changes nothing', async () => {
    await store.update((tx) => tx.create('services', service('s1', 'web')));
    const stale = store.get('services', 's1')!;
    await store.update((tx) => tx.update('services', { ...stale, Spec: { ...stale.Spec, Labels: { v: '1' } } }));
    await expect(store.update((tx) => tx.update('services', { ...stale, Spec: { ...stale.Spec, Labels: { v: '2' } } }))).rejects.toBeInstanceOf(ConflictError);
    expect(store.get('services', 's1')!.Spec.Labels).toEqual({ v: '1' });
  });

  test('a batch is atomic: one stale action refuses all of it', async () => {
    await store.update((tx) => tx.create('services', service('s1', 'a')));
    const stale = store.get('services', 's1')!;
    await store.update((tx) => tx.update('services', { ...stale }));
    await expect(
      store.update((tx) => {
        tx.create('services', service('s2', 'b'));
        tx.update('services', { ...stale });
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(store.get('services', 's2')).toBeUndefined();
  });

  test('service names are unique; a deleted name can be reused', async () => {
    await store.update((tx) => tx.create('services', service('s1', 'web')));
    await expect(store.update((tx) => tx.create('services', service('s2', 'web')))).rejects.toThrow('already in use');
    await store.update((tx) => tx.delete('services', 's1'));
    await store.update((tx) => tx.create('services', service('s2', 'web')));
    expect(store.by('services', 'name', 'web').map((s) => s.ID)).toEqual(['s2']);
  });

  test('updating or deleting a missing object is NotFound', async () => {
    await expect(store.update((tx) => tx.delete('services', 'nope'))).rejects.toBeInstanceOf(NotFoundError);
  });

  test('indexes follow updates and deletes', async () => {
    await store.update((tx) => {
      for (let i = 0; i < 3; i++)
        tx.create('tasks', { ID: `t${i}`, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', ServiceID: 'svc', Slot: i + 1, NodeID: '', Spec: {}, DesiredState: 'running', Status: { Timestamp: '', State: 'new', Message: '' } });
    });
    expect(store.by('tasks', 'service', 'svc')).toHaveLength(3);
    const t0 = store.get('tasks', 't0')!;
    await store.update((tx) => tx.update('tasks', { ...t0, NodeID: 'n1' }));
    expect(store.by('tasks', 'node', 'n1').map((t) => t.ID)).toEqual(['t0']);
    await store.update((tx) => tx.delete('tasks', 't0'));
    expect(store.by('tasks', 'node', 'n1')).toHaveLength(0);
    expect(store.by('tasks', 'service', 'svc')).toHaveLength(2);
  });

  test('watchers see each change and a commit event per batch', async () => {
    const seen: ChangeEvent['kind'][] = [];
    store.watch((ev) => seen.push(ev.kind));
    await store.update((tx) => {
      tx.create('services', service('s1', 'a'));
      tx.create('services', service('s2', 'b'));
    });
    expect(seen).toEqual(['create', 'create', 'commit']);
  });

  test('concurrent proposals are all applied, in order', async () => {
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.update((tx) => tx.create('services', service(`s${i}`, `n${i}`)))));
    expect(store.size('services')).toBe(100);
    expect(store.index).toBe(100);
  });

  test('a snapshot restored into a fresh store gives the same tables, indexes and index', async () => {
    for (let i = 0; i < 5; i++) await store.update((tx) => tx.create('services', service(`s${i}`, `n${i}`)));
    const again = new MemoryStore();
    again.restore(store.snapshot(), store.index);
    expect(again.index).toBe(5);
    expect(again.list('services')).toEqual(store.list('services'));
    expect(again.by('services', 'name', 'n4')[0]!.ID).toBe('s4');
  });
});

describe('transactions', () => {
  test('writes to one object fold: create+update is one create, update+delete one delete, create+delete nothing; order kept', async () => {
    await store.update((tx) => {
      tx.create('services', service('a', 'a'));
      tx.create('services', service('b', 'b'));
    });
    let actions: unknown[] = [];
    await store.update((tx) => {
      tx.create('services', service('c', 'c'));
      tx.update('services', { ...tx.get('services', 'a')!, Spec: { ...tx.get('services', 'a')!.Spec, Labels: { x: '1' } } });
      tx.update('services', { ...tx.get('services', 'c')!, Spec: { ...tx.get('services', 'c')!.Spec, Labels: { y: '2' } } });
      tx.update('services', { ...tx.get('services', 'a')!, Spec: { ...tx.get('services', 'a')!.Spec, Labels: { x: '2' } } });
      tx.update('services', { ...tx.get('services', 'b')!, Spec: { ...tx.get('services', 'b')!.Spec, Labels: { z: '3' } } });
      tx.delete('services', 'b');
      tx.create('services', service('d', 'd'));
      tx.delete('services', 'd');
      actions = tx.actions().map((a) => `${a.op} ${a.op === 'delete' ? a.id : a.object.ID}${a.op !== 'delete' ? ` v${a.object.Version.Index} ${JSON.stringify((a.object as Service).Spec.Labels ?? {})}` : ` v${a.version}`}`);
    });
    expect(actions).toEqual(['create c v0 {"y":"2"}', 'update a v1 {"x":"2"}', 'delete b v1']);
    expect(store.get('services', 'a')!.Spec.Labels).toEqual({ x: '2' });
    expect(store.get('services', 'b')).toBeUndefined();
    expect(store.get('services', 'c')!.Spec.Labels).toEqual({ y: '2' });
    expect(store.get('services', 'd')).toBeUndefined();
  });

  test('a batch of several objects over maxBatchBytes is refused before it is proposed; one object never is', async () => {
    store.maxBatchBytes = 2_000;
    const big = (id: string) => ({ ...service(id, id), Spec: { Name: id, Labels: { pad: 'x'.repeat(1_500) }, TaskTemplate: { Runtime: 'mock' } } });
    const index = store.index;
    await expect(store.update((tx) => { tx.create('services', big('a')); tx.create('services', big('b')); })).rejects.toBeInstanceOf(BatchTooLargeError);
    expect(store.index).toBe(index);
    await store.update((tx) => tx.create('services', { ...big('c'), Spec: { ...big('c').Spec, Labels: { pad: 'x'.repeat(5_000) } } }));
    expect(store.get('services', 'c')).toBeDefined();
  });
});

describe('writes in the log', () => {
  test('proposing() counts this replica\'s writes by table and op until applied or refused; whenFewer() calls back at the next one done', async () => {
    const held: { go: () => void; fail: () => void }[] = [];
    let index = store.index;
    store.proposer = {
      propose: (entry) => new Promise((resolve, reject) => held.push({ go: () => resolve(store.apply(++index, entry)), fail: () => reject(new Error('lost')) })),
    };
    const a = store.update((tx) => tx.create('services', service('a', 'a')));
    const b = store.update((tx) => tx.create('services', service('b', 'b')));
    expect(store.proposing('services', 'create')).toBe(2);
    expect(store.proposing('services', 'update')).toBe(0);
    expect(store.proposing('tasks', 'create')).toBe(0);
    let fewer = 0;
    store.whenFewer('services', 'create', () => { fewer++; });
    let givenUp = false;
    store.whenFewer('services', 'create', () => { givenUp = true; })(); // taken back at once
    let other = false;
    store.whenFewer('services', 'update', () => { other = true; }); // none on its way: at once
    expect(other).toBe(true);
    held[0]!.go();
    await a;
    expect(store.proposing('services', 'create')).toBe(1);
    expect(fewer).toBe(1);
    store.whenFewer('services', 'create', () => { fewer++; });
    held[1]!.fail(); // a write that never commits is no longer on its way either
    await expect(b).rejects.toThrow('lost');
    expect(fewer).toBe(2); // each waiter called once
    expect(givenUp).toBe(false);
    expect(store.proposing('services', 'create')).toBe(0);
    let now = false;
    store.whenFewer('services', 'create', () => { now = true; }); // none in the log: at once
    expect(now).toBe(true);
  });

  test('a batch counts once for each table and op among its actions, however they are ordered', async () => {
    await store.update((tx) => tx.create('services', service('a', 'a')));
    let go: () => void = () => {};
    let index = store.index;
    store.proposer = { propose: (entry) => new Promise((resolve) => { go = () => resolve(store.apply(++index, entry)); }) };
    const written = store.update((tx) => {
      tx.create('services', service('b', 'b'));
      tx.update('services', { ...tx.get('services', 'a')!, Spec: { ...tx.get('services', 'a')!.Spec, Labels: { x: '1' } } });
      tx.create('services', service('c', 'c'));
    });
    expect(store.proposing('services', 'create')).toBe(1);
    expect(store.proposing('services', 'update')).toBe(1);
    go();
    await written;
    expect(store.proposing('services', 'create')).toBe(0);
    expect(store.proposing('services', 'update')).toBe(0);
  });

  test('announce() counts a write being prepared until settled, once however often it is settled', async () => {
    const settle = store.announce('services', 'create');
    expect(store.proposing('services', 'create')).toBe(1);
    let fewer = 0;
    const waitFewer = () => store.whenFewer('services', 'create', () => { fewer++; });
    waitFewer();
    await store.update((tx) => tx.create('services', service('a', 'a'))); // proposed and applied meanwhile
    expect(store.proposing('services', 'create')).toBe(1);
    expect(fewer).toBe(1);
    waitFewer();
    settle();
    settle();
    expect(fewer).toBe(2);
    expect(store.proposing('services', 'create')).toBe(0);
  });
});

describe('task counts', () => {
  const task = (id: string, svc: string, desired: string, state: string) =>
    ({ ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Runtime: 'mock' }, ServiceID: svc, Slot: 1, NodeID: '', DesiredState: desired, Status: { Timestamp: '', State: state, Message: '' } }) as unknown as Task;
  const counts = (s: MemoryStore, svc: string) => Object.fromEntries(s.countTasks(svc));

  test('follow creates, updates, deletes and a restore', async () => {
    await store.update((tx) => {
      tx.create('tasks', task('a', 's1', 'running', 'running'));
      tx.create('tasks', task('b', 's1', 'running', 'new'));
      tx.create('tasks', task('c', 's2', 'shutdown', 'complete'));
    });
    expect(counts(store, 's1')).toEqual({ 'running|running': 1, 'running|new': 1 });
    await store.update((tx) => tx.update('tasks', { ...tx.get('tasks', 'b')!, Status: { Timestamp: '', State: 'running', Message: '' } }));
    expect(counts(store, 's1')).toEqual({ 'running|running': 2 });
    await store.update((tx) => tx.delete('tasks', 'a'));
    expect(counts(store, 's1')).toEqual({ 'running|running': 1 });
    const again = new MemoryStore();
    again.restore(store.snapshot(), store.index);
    expect(counts(again, 's1')).toEqual({ 'running|running': 1 });
    expect(counts(again, 's2')).toEqual({ 'shutdown|complete': 1 });
    await store.update((tx) => tx.delete('tasks', 'c'));
    expect(counts(store, 's2')).toEqual({});
  });
});

describe('networks table rules (checked at apply)', () => {
  const net = (id: string, name: string, subnet?: string, VNI?: number) =>
    ({ ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: name, Driver: 'overlay' as const, IPAM: { Config: subnet ? [{ Subnet: subnet }] : [] } }, ...(VNI ? { VNI } : {}) });

  test('names and VXLAN ids are unique, subnets never overlap; a deleted network frees all three', async () => {
    const s = memoryStore();
    await s.update((tx) => tx.create('networks', net('a', 'front', '10.0.1.0/24', 4097)));
    await expect(s.update((tx) => tx.create('networks', net('b', 'front')))).rejects.toThrow('network with name front already exists');
    await expect(s.update((tx) => tx.create('networks', net('b', 'back', '10.0.0.0/16')))).rejects.toThrow('overlaps the subnet of network front');
    await expect(s.update((tx) => tx.create('networks', net('b', 'back', undefined, 4097)))).rejects.toThrow('VXLAN id 4097');
    await s.update((tx) => {
      tx.delete('networks', 'a');
      tx.create('networks', net('b', 'front', '10.0.1.0/24', 4097));
    });
    expect(s.by('networks', 'name', 'front').map((n) => n.ID)).toEqual(['b']);
  });
});

describe('networks and the services that name them (checked at apply)', () => {
  const net = (id: string) => ({ ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: id, Driver: 'overlay' as const, IPAM: { Config: [] } } });
  const svc = (id: string, ...nets: string[]) => ({ ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: id, TaskTemplate: { Networks: nets.map((Target) => ({ Target })) } } }) as Service;

  test('a network a service names cannot be deleted; a service cannot start naming a missing network', async () => {
    const s = memoryStore();
    await s.update((tx) => tx.create('networks', net('n1')));
    await s.update((tx) => tx.create('services', svc('web', 'n1')));
    await expect(s.update((tx) => tx.delete('networks', 'n1'))).rejects.toThrow('network n1 is in use by service web');
    await expect(s.update((tx) => tx.create('services', svc('api', 'gone')))).rejects.toThrow('network gone not found');
    // Deleting the service in the same batch frees the network.
    await s.update((tx) => {
      tx.delete('services', 'web');
      tx.delete('networks', 'n1');
    });
    expect(s.size('networks')).toBe(0);
  });

  test('a service already naming a missing network (older data) can still be updated', async () => {
    const s = memoryStore();
    const old = { ...svc('web', 'gone'), Version: { Index: 1 } };
    s.restore(encode({ index: 0, tables: { services: [old] } }), 0); // the memory log counts from 1
    const cur = s.get('services', 'web')!;
    await s.update((tx) => tx.update('services', { ...cur, Spec: { ...cur.Spec, Labels: { a: '1' } } }));
    expect(s.get('services', 'web')!.Spec.Labels).toEqual({ a: '1' });
    const next = s.get('services', 'web')!;
    const more = { ...next, Spec: { ...next.Spec, TaskTemplate: { Networks: [{ Target: 'gone' }, { Target: 'other' }] } } };
    await expect(s.update((tx) => tx.update('services', more))).rejects.toThrow('network other not found');
  });
});
