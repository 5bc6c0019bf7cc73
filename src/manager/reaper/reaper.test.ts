import { afterEach, describe, expect, test } from 'bun:test';
import { type MemoryStore, memoryStore } from '../../store/index.ts';
import type { Cluster, Task } from '../../types/index.ts';
import { makeService, makeTask, settle } from '../testkit.ts';
import { TaskReaper } from './reaper.ts';

let store: MemoryStore;
let reaper: TaskReaper | null = null;
afterEach(async () => {
  await reaper?.stop();
  reaper = null;
});

const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
const old = (serviceId: string, n: number, o: Partial<Task> = {}) =>
  makeTask(serviceId, { state: 'failed', DesiredState: 'shutdown', CreatedAt: at(n), NodeID: 'n1', ...o });

function cluster(limit: number): Cluster {
  return {
    ID: 'c',
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: {
      Name: 'default',
      Orchestration: { TaskHistoryRetentionLimit: limit },
      Raft: { SnapshotInterval: 10000, ElectionTick: 10, HeartbeatTick: 1 },
      Dispatcher: { HeartbeatPeriod: 5e9 },
      CAConfig: { NodeCertExpiry: 0 },
    },
    JoinTokens: { Worker: '', Manager: '' },
  };
}

describe('TaskReaper', () => {
  test("after its first pass it reads only the tasks of services with news: a new task's history, a deleted service's tasks", async () => {
    store = memoryStore();
    const services = ['a', 'b', 'c'].map((id) => makeService(id, {}, id));
    const live = (id: string, n: number) => makeTask(id, { state: 'running', CreatedAt: at(n), NodeID: 'n1', Slot: n });
    await store.update((tx) => {
      for (const s of services) tx.create('services', s);
      for (const s of services) for (const n of [1, 2]) tx.create('tasks', live(s.ID, n));
    });
    reaper = new TaskReaper({ store });
    reaper.start();
    await settle(store);
    const read: string[] = [];
    const list = store.list.bind(store);
    const by = store.by.bind(store);
    store.list = ((table: never) => (table === 'tasks' && read.push('all'), list(table))) as typeof store.list;
    store.by = ((table: never, index: never, key: string) => (table === 'tasks' && read.push(key), by(table, index, key))) as typeof store.by;
    // Slot 1 of b gets a sixth task: five of history is the limit, the oldest finished one goes.
    const history = [1, 2, 3, 4, 5].map((n) => old('b', n));
    await store.update((tx) => history.forEach((t) => tx.create('tasks', t)));
    await settle(store);
    expect(read).toEqual(['b']);
    expect(history.filter((t) => store.get('tasks', t.ID)).map((t) => t.CreatedAt)).toEqual([at(2), at(3), at(4), at(5)]);
    // A deleted service's finished tasks go; its running ones wait for their end.
    read.length = 0;
    const finished = old('c', 9);
    await store.update((tx) => tx.create('tasks', finished));
    await store.update((tx) => tx.delete('services', 'c'));
    await settle(store);
    expect(read.every((k) => k === 'c')).toBe(true);
    expect(store.get('tasks', finished.ID)).toBeUndefined();
    expect(store.by('tasks', 'service', 'c')).toHaveLength(2);
    // The cluster's limit: every task is read again.
    read.length = 0;
    await store.update((tx) => tx.create('clusters', cluster(1)));
    await settle(store);
    expect(read).toContain('all');
  });

  test('keeps at most the history limit per slot, deleting the oldest finished tasks', async () => {
    store = memoryStore();
    const s = makeService('web', {}, 's');
    const slot1 = [1, 2, 3, 4, 5, 6, 7].map((n) => old('s', n));
    const current = makeTask('s', { state: 'running', CreatedAt: at(0), NodeID: 'n1' }); // oldest, but live
    const slot2 = [1, 2].map((n) => old('s', n, { Slot: 2 }));
    const global = [1, 2, 3, 4, 5, 6].map((n) => old('s', n, { Slot: 0, NodeID: 'n2' }));
    await store.update((tx) => {
      tx.create('services', s);
      for (const t of [...slot1, current, ...slot2, ...global]) tx.create('tasks', t);
    });
    reaper = new TaskReaper({ store });
    reaper.start();
    await settle(store);
    const left = (ts: Task[]) => ts.filter((t) => store.get('tasks', t.ID)).map((t) => t.CreatedAt);
    expect(left(slot1)).toEqual([at(4), at(5), at(6), at(7)]);
    expect(store.get('tasks', current.ID)).toBeDefined();
    expect(left(slot2)).toHaveLength(2);
    expect(left(global)).toEqual([at(2), at(3), at(4), at(5), at(6)]);
  });

  test("a job's completions of its current run are never history; a previous run's are", async () => {
    store = memoryStore();
    const s = { ...makeService('job', { Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } } }, 's'), JobStatus: { JobIteration: { Index: 7 } } };
    const done = (n: number, iteration: number) => makeTask('s', { state: 'complete', DesiredState: 'complete', CreatedAt: at(n), NodeID: 'n1', JobIteration: { Index: iteration } });
    const previous = done(1, 3);
    const current = done(2, 7);
    await store.update((tx) => {
      tx.create('clusters', cluster(0));
      tx.create('services', s);
      for (const t of [previous, current]) tx.create('tasks', t);
    });
    reaper = new TaskReaper({ store });
    reaper.start();
    await settle(store);
    expect(store.get('tasks', previous.ID)).toBeUndefined();
    expect(store.get('tasks', current.ID)).toBeDefined();
  });

  test('the cluster setting changes the limit', async () => {
    store = memoryStore();
    const s = makeService('web', {}, 's');
    const slot1 = [1, 2, 3].map((n) => old('s', n));
    await store.update((tx) => {
      tx.create('clusters', cluster(1));
      tx.create('services', s);
      for (const t of slot1) tx.create('tasks', t);
    });
    reaper = new TaskReaper({ store });
    reaper.start();
    await settle(store);
    expect(slot1.filter((t) => store.get('tasks', t.ID)).map((t) => t.CreatedAt)).toEqual([at(3)]);
  });

  test('deletes tasks desired remove, or of deleted services, once idle', async () => {
    store = memoryStore();
    const s = makeService('web', {}, 's');
    const running = makeTask('s', { state: 'running', NodeID: 'n1', DesiredState: 'remove' });
    const pending = makeTask('s', { state: 'pending', DesiredState: 'remove', Slot: 2 });
    const stopped = makeTask('s', { state: 'shutdown', NodeID: 'n1', DesiredState: 'remove', Slot: 3 });
    const orphanNew = makeTask('gone', { state: 'new' });
    const orphanRunning = makeTask('gone', { state: 'running', NodeID: 'n1', Slot: 2 });
    await store.update((tx) => {
      tx.create('services', s);
      for (const t of [running, pending, stopped, orphanNew, orphanRunning]) tx.create('tasks', t);
    });
    reaper = new TaskReaper({ store });
    reaper.start();
    await settle(store);
    const exists = (t: Task) => !!store.get('tasks', t.ID);
    expect([running, pending, stopped, orphanNew, orphanRunning].map(exists)).toEqual([true, false, false, false, true]);
    // When the running one stops, it goes too.
    for (const t of [running, orphanRunning]) {
      const cur = store.get('tasks', t.ID)!;
      await store.update((tx) => tx.update('tasks', { ...cur, Status: { ...cur.Status, State: 'shutdown' } }));
    }
    await settle(store);
    expect(exists(running) || exists(orphanRunning)).toBe(false);
  });
});
