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
