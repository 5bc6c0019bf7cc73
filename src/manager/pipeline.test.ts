/**
 * All four stages together on one store, with a fake worker that runs whatever is assigned and
 * stops whatever is told to stop. No stage knows about another: they meet only in the store.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { type MemoryStore, memoryStore } from '../store/index.ts';
import { isActiveOnNode, stateRank, type Node, type Task } from '../types/index.ts';
import { Allocator } from './allocator/index.ts';
import { Orchestrator } from './orchestrator/index.ts';
import { TaskReaper } from './reaper/index.ts';
import { Scheduler } from './scheduler/index.ts';
import { isRetryable, ManualClock, type ReconcileStage } from './stage.ts';
import { liveTasks, makeNode, makeService, settle, tasksOf, waitFor } from './testkit.ts';

/** Plays every worker: assigned → running when meant to run, → shutdown when told to stop. */
function fakeWorker(store: MemoryStore, downNodes: () => Set<string> = () => new Set()): () => void {
  let again = false;
  let busy = false;
  let stopped = false;
  const pass = async () => {
    const changes: Task[] = [];
    for (const t of store.list('tasks')) {
      if (!t.NodeID || downNodes().has(t.NodeID) || !isActiveOnNode(t.Status.State)) continue;
      const run = stateRank(t.DesiredState) <= stateRank('running');
      if (run && t.Status.State !== 'running') changes.push({ ...t, Status: { ...t.Status, State: 'running', Message: 'started' } });
      if (!run) changes.push({ ...t, Status: { ...t.Status, State: 'shutdown', Message: 'stopped' } });
    }
    for (const t of changes) {
      if (stopped) return;
      try {
        await store.update((tx) => tx.update('tasks', t));
      } catch (e) {
        if (!isRetryable(e)) throw e;
        again = true;
      }
    }
  };
  const kick = async () => {
    again = true;
    if (busy) return;
    busy = true;
    try {
      while (again && !stopped) {
        again = false;
        await new Promise((r) => setImmediate(r));
        await pass();
      }
    } finally {
      busy = false;
    }
  };
  const unwatch = store.watch((ev) => void (ev.kind === 'commit' && kick()));
  return () => {
    stopped = true;
    unwatch();
  };
}

let stages: ReconcileStage[] = [];
let stopWorker: (() => void) | null = null;
afterEach(async () => {
  stopWorker?.();
  await Promise.all(stages.map((s) => s.stop()));
  stages = [];
});

function startAll(store: MemoryStore, clock: ManualClock) {
  stages = [new Orchestrator({ store, clock }), new Allocator({ store, clock }), new Scheduler({ store, clock }), new TaskReaper({ store, clock })];
  for (const s of stages) s.start();
}

const running = (store: MemoryStore, id: string) => liveTasks(store, id).filter((t) => t.Status.State === 'running');

describe('pipeline', () => {
  test('a 50-replica service converges: every slot running once, spread over the nodes', async () => {
    const store = memoryStore();
    const clock = new ManualClock();
    const nodes: Node[] = [1, 2, 3, 4, 5].map((i) => makeNode({ id: `n${i}` }));
    await store.update((tx) => {
      for (const n of nodes) tx.create('nodes', n);
      tx.create('services', makeService('web', { Mode: { Replicated: { Replicas: 50 } }, EndpointSpec: { Ports: [{ TargetPort: 80 }] } }, 'web'));
    });
    stopWorker = fakeWorker(store);
    startAll(store, clock);
    await waitFor(() => running(store, 'web').length === 50, '50 running tasks', 20_000);
    await settle(store);
    const live = liveTasks(store, 'web');
    expect(live).toHaveLength(50);
    expect(new Set(live.map((t) => t.Slot)).size).toBe(50);
    expect(tasksOf(store, 'web')).toHaveLength(50); // nothing was made twice
    const perNode = new Map<string, number>();
    for (const t of live) perNode.set(t.NodeID, (perNode.get(t.NodeID) ?? 0) + 1);
    expect([...perNode.values()]).toEqual([10, 10, 10, 10, 10]);
    expect(store.get('services', 'web')!.Endpoint!.Ports![0]!.PublishedPort).toBe(30000);

    // Scale down and delete: the reaper leaves nothing behind.
    const s = store.get('services', 'web')!;
    await store.update((tx) => tx.update('services', { ...s, Spec: { ...s.Spec, Mode: { Replicated: { Replicas: 10 } } } }));
    await waitFor(() => running(store, 'web').length === 10 && tasksOf(store, 'web').every((t) => t.DesiredState === 'running' || t.Status.State === 'shutdown'), 'scaled down', 20_000);
    await store.update((tx) => tx.delete('services', 'web'));
    await waitFor(() => tasksOf(store, 'web').length === 0, 'all tasks reaped', 20_000);
  });

  test('drain on a single node: the replacement waits pending with a reason, and runs when the node is active again', async () => {
    const store = memoryStore();
    const clock = new ManualClock();
    await store.update((tx) => {
      tx.create('nodes', makeNode({ id: 'n1' }));
      tx.create('services', makeService('web', {}, 'web'));
    });
    stopWorker = fakeWorker(store);
    startAll(store, clock);
    await waitFor(() => running(store, 'web').length === 1, 'running');
    const first = running(store, 'web')[0]!;
    const n1 = store.get('nodes', 'n1')!;
    await store.update((tx) => tx.update('nodes', { ...n1, Spec: { ...n1.Spec, Availability: 'drain' } }));
    await waitFor(() => liveTasks(store, 'web').some((t) => t.ID !== first.ID && t.Status.Err), 'an explained pending replacement');
    await settle(store);
    const repl = liveTasks(store, 'web')[0]!;
    expect(repl).toMatchObject({ Slot: 1, NodeID: '' });
    expect(repl.Status).toMatchObject({ State: 'pending', Err: 'no suitable node (1 node drained)' });
    expect(store.get('tasks', first.ID)!).toMatchObject({ DesiredState: 'shutdown', Status: { State: 'shutdown' } });
    const n1b = store.get('nodes', 'n1')!;
    await store.update((tx) => tx.update('nodes', { ...n1b, Spec: { ...n1b.Spec, Availability: 'active' } }));
    await waitFor(() => store.get('tasks', repl.ID)!.Status.State === 'running', 'replacement running');
    expect(store.get('tasks', repl.ID)!.NodeID).toBe('n1');
  });

  test('a node going down moves its tasks to the other nodes', async () => {
    const store = memoryStore();
    const clock = new ManualClock();
    const down = new Set<string>();
    await store.update((tx) => {
      for (const id of ['n1', 'n2']) tx.create('nodes', makeNode({ id }));
      tx.create('services', makeService('web', { Mode: { Replicated: { Replicas: 4 } } }, 'web'));
    });
    stopWorker = fakeWorker(store, () => down);
    startAll(store, clock);
    await waitFor(() => running(store, 'web').length === 4, 'running');
    down.add('n1');
    const n1 = store.get('nodes', 'n1')!;
    await store.update((tx) => tx.update('nodes', { ...n1, Status: { State: 'down' } }));
    await waitFor(() => running(store, 'web').length === 4 && running(store, 'web').every((t) => t.NodeID === 'n2'), 'all on n2');
    expect(new Set(liveTasks(store, 'web').map((t) => t.Slot))).toEqual(new Set([1, 2, 3, 4]));
  });
});
