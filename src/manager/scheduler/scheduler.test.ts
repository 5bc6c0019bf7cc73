import { afterEach, describe, expect, test } from 'bun:test';
import { type MemoryStore, memoryStore } from '../../store/index.ts';
import type { Node, Task } from '../../types/index.ts';
import { ManualClock } from '../stage.ts';
import { holdProposals, makeNode, makeTask, settle, waitFor } from '../testkit.ts';
import { constraintCache, cpuFilter, constraintFilter, type FilterContext, memoryFilter, type NodeLoad, Pipeline, readyFilter, runtimeFilter } from './filters.ts';
import { Scheduler } from './scheduler.ts';

const GiB = 2 ** 30;
const emptyLoad = (): NodeLoad => ({ total: 0, perService: new Map(), nanoCPUs: 0, memoryBytes: 0 });
const ctx = (loads: Record<string, Partial<NodeLoad>> = {}): FilterContext => ({
  load: (id) => ({ ...emptyLoad(), ...loads[id] }),
  constraints: constraintCache(),
});

describe('filters', () => {
  const task = makeTask('s1', { state: 'pending' });

  test('ready: node ready and active', () => {
    expect(readyFilter.check(makeNode(), task, ctx())).toBe(true);
    expect(readyFilter.check(makeNode({ state: 'down' }), task, ctx())).toBe(false);
    expect(readyFilter.check(makeNode({ availability: 'pause' }), task, ctx())).toBe(false);
    expect(readyFilter.check(makeNode({ availability: 'drain' }), task, ctx())).toBe(false);
    expect(readyFilter.explain(1, task)).toBe('1 node not available for new tasks');
    expect(readyFilter.explain(2, task)).toBe('2 nodes not available for new tasks');
    const failed = [makeNode({ availability: 'drain' }), makeNode({ availability: 'drain', state: 'down' }), makeNode({ availability: 'pause' }), makeNode({ state: 'down' }), makeNode({ state: 'disconnected' })];
    expect(readyFilter.explain(5, task, failed)).toBe('2 nodes drained; 1 node paused; 1 node down; 1 node not ready (disconnected)');
  });

  test('runtime: present and healthy', () => {
    const t = makeTask('s1', { Spec: { ContainerSpec: { Image: 'nginx' } } });
    expect(runtimeFilter.check(makeNode(), t, ctx())).toBe(false);
    expect(runtimeFilter.check(makeNode({ runtimes: [{ Name: 'container', Healthy: false }] }), t, ctx())).toBe(false);
    expect(runtimeFilter.check(makeNode({ runtimes: [{ Name: 'container', Healthy: true }] }), t, ctx())).toBe(true);
    expect(runtimeFilter.explain(1, t)).toBe('runtime "container" not available on 1 node');
    const down = makeNode({ runtimes: [{ Name: 'container', Healthy: false, Message: 'Docker Engine at unix:///x.sock not reachable' }] });
    expect(runtimeFilter.explain(2, t, [down, makeNode()]))
      .toBe('runtime "container" unhealthy on 1 node; 1 node lacks runtime "container": Docker Engine at unix:///x.sock not reachable');
    expect(runtimeFilter.explain(2, t, [makeNode(), makeNode()])).toBe('2 nodes lack runtime "container"');
  });

  test('cpu and memory: reservations fit what is left', () => {
    const t = makeTask('s1', { Spec: { Runtime: 'mock', Resources: { Reservations: { NanoCPUs: 1e9, MemoryBytes: GiB } } } });
    const n = makeNode({ id: 'n', nanoCPUs: 2e9, memoryBytes: 2 * GiB });
    expect(cpuFilter.check(n, t, ctx())).toBe(true);
    expect(cpuFilter.check(n, t, ctx({ n: { nanoCPUs: 1.5e9 } }))).toBe(false);
    expect(memoryFilter.check(n, t, ctx({ n: { memoryBytes: GiB } }))).toBe(true);
    expect(memoryFilter.check(n, t, ctx({ n: { memoryBytes: GiB + 1 } }))).toBe(false);
    expect(cpuFilter.explain(3, t)).toBe('insufficient CPU on 3 nodes');
    expect(memoryFilter.explain(1, t)).toBe('insufficient memory on 1 node');
  });

  test('constraints', () => {
    const t = makeTask('s1', { Spec: { Runtime: 'mock', Placement: { Constraints: ['node.labels.zone==a'] } } });
    expect(constraintFilter.check(makeNode({ labels: { zone: 'a' } }), t, ctx())).toBe(true);
    expect(constraintFilter.check(makeNode({ labels: { zone: 'b' } }), t, ctx())).toBe(false);
    const bad = makeTask('s1', { Spec: { Runtime: 'mock', Placement: { Constraints: ['nope'] } } });
    expect(constraintFilter.check(makeNode(), bad, ctx())).toBe(false);
    expect(constraintFilter.explain(2, t)).toBe('scheduling constraints not satisfied on 2 nodes');
    const two = makeTask('s1', { Spec: { Runtime: 'mock', Placement: { Constraints: ['node.labels.zone==a', 'node.role==manager'] } } });
    const nodes = [makeNode({ labels: { zone: 'b' } }), makeNode({ labels: { zone: 'a' } }), makeNode()];
    expect(constraintFilter.explain(3, two, nodes)).toBe('constraint node.labels.zone==a not satisfied on 2 nodes; constraint node.role==manager not satisfied on 1 node');
  });

  test('pipeline counts each node against the first filter it fails', () => {
    const t = makeTask('s1', { Spec: { Runtime: 'mock', Resources: { Reservations: { MemoryBytes: 16 * GiB } } } });
    const r = new Pipeline().run(t, [makeNode({ availability: 'drain' }), makeNode(), makeNode({ state: 'down', memoryBytes: 1 })], ctx());
    expect(r.eligible).toEqual([]);
    expect(r.explanation).toBe('no suitable node (1 node drained; 1 node down; insufficient memory on 1 node)');
  });
});

let store: MemoryStore;
let sched: Scheduler | null = null;
afterEach(async () => {
  await sched?.stop();
  sched = null;
});

async function seed(nodes: Node[], tasks: Task[]) {
  await store.update((tx) => {
    for (const n of nodes) tx.create('nodes', n);
    for (const t of tasks) tx.create('tasks', t);
  });
}
const get = (id: string) => store.get('tasks', id)!;

describe('Scheduler', () => {
  test('assigns pending tasks, spreading by service then total then node id', async () => {
    store = memoryStore();
    const other = [1, 2].map(() => makeTask('other', { state: 'running', NodeID: 'b' }));
    const tasks = [1, 2, 3, 4].map((slot) => makeTask('web', { state: 'pending', Slot: slot }));
    await seed([makeNode({ id: 'a' }), makeNode({ id: 'b' }), makeNode({ id: 'c' })], [...other, ...tasks]);
    sched = new Scheduler({ store });
    sched.start();
    await waitFor(() => tasks.every((t) => get(t.ID).Status.State === 'assigned'), 'assignment');
    const on = tasks.map((t) => get(t.ID).NodeID).sort();
    // a and c are empty, b has 2 tasks of another service: web spreads a, c, then b (1 web each), then a.
    expect(on).toEqual(['a', 'a', 'b', 'c']);
    expect(get(tasks[0]!.ID).Status.Message).toBe('scheduler assigned task to node');
  });

  test('ignores tasks not pending or not desired running; a preset node is the only candidate', async () => {
    store = memoryStore();
    const fresh = makeTask('web', { state: 'new' });
    const stopping = makeTask('web', { state: 'pending', DesiredState: 'shutdown' });
    const pinned = makeTask('g', { state: 'pending', NodeID: 'b', Slot: 0 });
    await seed([makeNode({ id: 'a' }), makeNode({ id: 'b' })], [fresh, stopping, pinned]);
    sched = new Scheduler({ store });
    sched.start();
    await waitFor(() => get(pinned.ID).Status.State === 'assigned');
    await settle(store);
    expect(get(pinned.ID).NodeID).toBe('b');
    expect(get(fresh.ID).Status.State).toBe('new');
    expect(get(stopping.ID).Status.State).toBe('pending');
  });

  test('resources: reservations of active tasks count, finished ones do not', async () => {
    store = memoryStore();
    const spec = { Runtime: 'mock', Resources: { Reservations: { MemoryBytes: 3 * GiB } } };
    const running = makeTask('x', { state: 'running', NodeID: 'a', Spec: spec });
    const done = makeTask('x', { state: 'complete', NodeID: 'a', Spec: spec });
    const t1 = makeTask('web', { state: 'pending', Spec: spec });
    const t2 = makeTask('web', { state: 'pending', Spec: spec, Slot: 2 });
    await seed([makeNode({ id: 'a', memoryBytes: 8 * GiB })], [running, done, t1, t2]);
    sched = new Scheduler({ store });
    sched.start();
    await waitFor(() => [t1, t2].some((t) => get(t.ID).Status.State === 'assigned'));
    await settle(store);
    const states = [get(t1.ID), get(t2.ID)].map((t) => t.Status.State).sort();
    expect(states).toEqual(['assigned', 'pending']);
    const stuck = [get(t1.ID), get(t2.ID)].find((t) => t.Status.State === 'pending')!;
    expect(stuck.Status.Err).toBe('no suitable node (insufficient memory on 1 node)');
  });

  test('an unplaceable task stays pending with an explanation, written once, and is placed when a node becomes eligible', async () => {
    store = memoryStore();
    const t = makeTask('web', { state: 'pending' });
    await seed([makeNode({ id: 'a', availability: 'drain' })], [t]);
    sched = new Scheduler({ store });
    sched.start();
    await waitFor(() => get(t.ID).Status.Message !== '');
    await settle(store);
    const msg = 'no suitable node (1 node drained)';
    expect(get(t.ID).Status).toMatchObject({ State: 'pending', Message: msg, Err: msg });
    const version = get(t.ID).Version.Index;
    // An unrelated node change re-runs the scheduler but must not rewrite an unchanged message.
    const a0 = store.get('nodes', 'a')!;
    await store.update((tx) => tx.update('nodes', { ...a0, Spec: { ...a0.Spec, Labels: { x: 'y' } } }));
    await settle(store);
    expect(get(t.ID).Version.Index).toBe(version);
    await store.update((tx) => tx.create('nodes', makeNode({ id: 'z', state: 'down' })));
    await settle(store);
    expect(get(t.ID).Status.Err).toBe('no suitable node (1 node drained; 1 node down)');
    const a = store.get('nodes', 'a')!;
    await store.update((tx) => tx.update('nodes', { ...a, Spec: { ...a.Spec, Availability: 'active' } }));
    await waitFor(() => get(t.ID).Status.State === 'assigned', 'placement after activation');
    expect(get(t.ID).NodeID).toBe('a');
  });

  test('a conflicting batch falls back to one task at a time', async () => {
    store = memoryStore();
    const tasks = [1, 2, 3].map((slot) => makeTask('web', { state: 'pending', Slot: slot }));
    await seed([makeNode({ id: 'a' })], tasks);
    sched = new Scheduler({ store, batchSize: 10 });
    // Someone else touches one task just as the scheduler's batch is in flight.
    const t0 = get(tasks[0]!.ID);
    sched.start();
    await store.update((tx) => tx.update('tasks', { ...t0, Labels: { touched: '1' } }));
    await waitFor(() => tasks.every((t) => get(t.ID).Status.State === 'assigned'), 'all assigned');
    expect(get(tasks[0]!.ID).Labels).toEqual({ touched: '1' });
  });
});

describe('Scheduler writes in flight', () => {
  test('a pass runs while an earlier pass\'s placements are in the log: it leaves those tasks alone and counts their load', async () => {
    // A log that holds proposals until released, as a busy raft log would.
    store = memoryStore();
    const { held, release } = holdProposals(store);
    const spec = { Runtime: 'mock', Resources: { Reservations: { NanoCPUs: 1e9 } } };
    const a = [1, 2].map((slot) => makeTask('a', { state: 'pending', Slot: slot, Spec: spec }));
    const seeded = seed([makeNode({ id: 'n1', nanoCPUs: 1e9 }), makeNode({ id: 'n2', nanoCPUs: 1e9 })], a);
    release();
    await seeded;
    sched = new Scheduler({ store });
    sched.start();
    await waitFor(() => held.length === 1, 'the first pass\'s placements proposed');
    // More tasks arrive while those placements are not yet applied; each node has room for one task.
    const b = [1, 2].map((slot) => makeTask('b', { state: 'pending', Slot: slot, Spec: spec }));
    const created = store.update((tx) => b.forEach((t) => tx.create('tasks', t)));
    release(1);
    await created;
    // A second pass writes before the first pass's write is applied, and does not place a's tasks
    // again or put b's on the nodes a's took: it explains why b's wait.
    await waitFor(() => held.length === 2, 'the second pass\'s write proposed before the first is applied');
    while (held.length) release();
    await waitFor(() => a.every((t) => get(t.ID).Status.State === 'assigned'), 'a placed');
    await settle(store);
    expect(a.map((t) => get(t.ID).NodeID).sort()).toEqual(['n1', 'n2']);
    for (const t of b) {
      expect(get(t.ID).Status.State).toBe('pending');
      expect(get(t.ID).Status.Err).toBe('no suitable node (insufficient CPU on 2 nodes)');
    }
  });

  test('a placement write that is not applied leaves its tasks to the next pass', async () => {
    store = memoryStore();
    const t = makeTask('web', { state: 'pending' });
    await seed([makeNode({ id: 'a' })], [t]);
    const real = store.proposer!;
    let refuse = true;
    store.proposer = {
      propose: (entry, signal, local) => (refuse ? ((refuse = false), Promise.reject(new Error('not the leader'))) : real.propose(entry, signal, local)),
      readBarrier: async () => {},
    };
    const errors: string[] = [];
    const clock = new ManualClock();
    sched = new Scheduler({ store, clock, onError: (_stage, err) => errors.push(String(err)) });
    sched.start();
    await waitFor(() => errors.length === 1, 'the refusal reported');
    expect(errors).toEqual(['Error: not the leader']);
    expect(get(t.ID).Status.State).toBe('pending');
    clock.advance(100); // the back-off
    await waitFor(() => get(t.ID).Status.State === 'assigned', 'placed after the refused write');
  });
});

describe('Scheduler passes', () => {
  class Counted extends Scheduler {
    passes = 0;
    protected override async reconcile(signal: AbortSignal): Promise<void> {
      this.passes++;
      return super.reconcile(signal);
    }
  }

  test('a task moving on from assigned wakes no pass; a new pending task and a freed node do', async () => {
    store = memoryStore();
    const t = makeTask('web', { state: 'pending' });
    await seed([makeNode({ id: 'a' })], [t]);
    const s = new Counted({ store });
    sched = s;
    s.start();
    await waitFor(() => get(t.ID).Status.State === 'assigned', 'assignment');
    await settle(store);
    const after = s.passes;
    for (const state of ['accepted', 'running'] as const) await store.update((tx) => tx.update('tasks', { ...get(t.ID), Status: { ...get(t.ID).Status, State: state } }));
    await settle(store);
    expect(s.passes).toBe(after);
    await store.update((tx) => tx.update('tasks', { ...get(t.ID), Status: { ...get(t.ID).Status, State: 'complete' } }));
    await settle(store);
    expect(s.passes).toBe(after + 1);
    const next = makeTask('web', { state: 'pending', Slot: 2 });
    await store.update((tx) => tx.create('tasks', next));
    await waitFor(() => get(next.ID).Status.State === 'assigned', 'second assignment');
  });
});
