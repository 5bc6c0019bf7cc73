import { afterEach, describe, expect, test } from 'bun:test';
import { type MemoryStore, memoryStore } from '../../../store/index.ts';
import { NS_PER_S, type Node, type Service, type ServiceSpec, type TaskState } from '../../../types/index.ts';
import { ManualClock } from '../../stage.ts';
import { liveTasks, makeNode, makeService, settle, tasksOf } from '../../testkit.ts';
import { Orchestrator } from '../orchestrator.ts';
import { JobOrchestrator } from './jobs.ts';

let store: MemoryStore;
let clock: ManualClock;
let jobs: JobOrchestrator | null = null;
let orch: Orchestrator | null = null;
afterEach(async () => {
  await jobs?.stop();
  await orch?.stop();
  jobs = orch = null;
});

const noDelay = { Runtime: 'mock', RestartPolicy: { Delay: 0 } } as const;

async function setup(mode: ServiceSpec['Mode'], spec: Partial<ServiceSpec> = {}, nodes: Node[] = [makeNode({ id: 'n1' })]): Promise<Service> {
  store = memoryStore();
  clock = new ManualClock();
  const s: Service = { ...makeService('job', { Mode: mode, TaskTemplate: { ...noDelay }, ...spec }, 'job'), JobStatus: { JobIteration: { Index: 0 } } };
  await store.update((tx) => {
    for (const n of nodes) tx.create('nodes', n);
    tx.create('services', s);
  });
  jobs = new JobOrchestrator({ store, clock });
  jobs.start();
  await settle(store);
  return store.get('services', 'job')!;
}

async function setState(id: string, state: TaskState, nodeId = 'n1') {
  const t = store.get('tasks', id)!;
  await store.update((tx) => tx.update('tasks', { ...t, NodeID: t.NodeID || nodeId, Status: { ...t.Status, State: state } }));
  await settle(store);
}

/** Finish every task meant to run with `state`, once. */
async function finishAll(state: TaskState) {
  for (const t of liveTasks(store, 'job')) await setState(t.ID, state);
}

const completed = () => tasksOf(store, 'job').filter((t) => t.Status.State === 'complete');
const slots = (ts = liveTasks(store, 'job')) => ts.map((t) => t.Slot).sort((a, b) => a - b);

describe('JobOrchestrator, replicated job', () => {
  test('runs MaxConcurrent at a time until exactly TotalCompletions completed, and no more', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 5 } });
    expect(slots()).toEqual([1, 2]);
    for (const t of liveTasks(store, 'job')) expect(t.JobIteration).toEqual({ Index: 0 });
    await finishAll('complete');
    expect(slots()).toEqual([3, 4]);
    // A completed task is desired `complete`, never restarted.
    expect(completed().map((t) => t.DesiredState)).toEqual(['complete', 'complete']);
    await finishAll('complete');
    expect(slots()).toEqual([5]);
    await finishAll('complete');
    expect(liveTasks(store, 'job')).toHaveLength(0);
    expect(completed().map((t) => t.Slot).sort()).toEqual([1, 2, 3, 4, 5]);
    const idx = store.index;
    clock.advance(60_000);
    await store.update((tx) => tx.create('nodes', makeNode({ id: 'n2' })));
    await settle(store);
    expect(store.index).toBe(idx + 1); // nothing more to do
  });

  test('a failed task is restarted in its slot after the delay, and counts against MaxConcurrent meanwhile', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 2 } }, { TaskTemplate: { Runtime: 'mock', RestartPolicy: { Delay: 2 * NS_PER_S } } });
    const first = liveTasks(store, 'job')[0]!;
    await setState(first.ID, 'failed');
    expect(store.get('tasks', first.ID)!.DesiredState).toBe('shutdown');
    expect(liveTasks(store, 'job')).toHaveLength(0); // slot 1 waits; slot 2 does not start instead
    clock.advance(1999);
    await settle(store);
    expect(liveTasks(store, 'job')).toHaveLength(0);
    clock.advance(1);
    await settle(store);
    const retry = liveTasks(store, 'job')[0]!;
    expect(retry).toMatchObject({ Slot: 1, RestartAttempts: 1 });
    await setState(retry.ID, 'complete');
    expect(slots()).toEqual([2]);
  });

  test('restart condition any acts as on-failure; MaxAttempts gives up on a slot and the job stops short', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 2 } }, { TaskTemplate: { Runtime: 'mock', RestartPolicy: { Condition: 'any', Delay: 0, MaxAttempts: 1 } } });
    await finishAll('failed');
    await finishAll('failed'); // the one restart, failed again
    expect(liveTasks(store, 'job')).toHaveLength(0);
    const done = tasksOf(store, 'job').find((t) => t.SlotDone);
    expect(done).toMatchObject({ Slot: 1, RestartAttempts: 1, DesiredState: 'shutdown' });
    clock.advance(60_000);
    await settle(store);
    expect(tasksOf(store, 'job')).toHaveLength(2); // slot 2 never starts: slot 1 holds the one place
  });

  test('restart condition none: a failed task is not retried', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 2 } }, { TaskTemplate: { Runtime: 'mock', RestartPolicy: { Condition: 'none' } } });
    const [a, b] = liveTasks(store, 'job');
    await setState(a!.ID, 'failed');
    await setState(b!.ID, 'complete');
    expect(tasksOf(store, 'job')).toHaveLength(2);
    expect(store.get('tasks', a!.ID)).toMatchObject({ DesiredState: 'shutdown', SlotDone: true });
  });

  test('a new iteration (an update) runs the job again and stops what is left of the previous one', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 2 } });
    await finishAll('complete');
    const leftover = liveTasks(store, 'job')[0]!;
    await setState(leftover.ID, 'running');
    const s = store.get('services', 'job')!;
    await store.update((tx) => tx.update('services', { ...s, JobStatus: { JobIteration: { Index: s.Version.Index } } }));
    await settle(store);
    expect(store.get('tasks', leftover.ID)!.DesiredState).toBe('shutdown');
    const next = liveTasks(store, 'job');
    expect(next.map((t) => [t.Slot, t.JobIteration?.Index])).toEqual([[1, s.Version.Index]]);
    await finishAll('complete');
    await finishAll('complete');
    expect(completed().filter((t) => t.JobIteration?.Index === s.Version.Index)).toHaveLength(2);
  });

  test('a task on a drained node is replaced at once in the same slot', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } }, {}, [makeNode({ id: 'n1' }), makeNode({ id: 'n2' })]);
    const t = liveTasks(store, 'job')[0]!;
    await setState(t.ID, 'running', 'n1');
    const n1 = store.get('nodes', 'n1')!;
    await store.update((tx) => tx.update('nodes', { ...n1, Spec: { ...n1.Spec, Availability: 'drain' } }));
    await settle(store);
    expect(store.get('tasks', t.ID)!.DesiredState).toBe('shutdown');
    expect(liveTasks(store, 'job').map((x) => [x.Slot, x.NodeID])).toEqual([[1, '']]);
  });

  test('a restarted stage (lost memory) refills a stopped slot at once and never redoes a completion', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 2 } }, { TaskTemplate: { Runtime: 'mock', RestartPolicy: { Delay: 60 * NS_PER_S } } });
    const [a, b] = liveTasks(store, 'job');
    await setState(a!.ID, 'complete');
    await setState(b!.ID, 'failed');
    expect(liveTasks(store, 'job')).toHaveLength(0);
    await jobs!.stop();
    jobs = new JobOrchestrator({ store, clock });
    jobs.start();
    await settle(store);
    expect(liveTasks(store, 'job').map((t) => [t.Slot, t.RestartAttempts])).toEqual([[b!.Slot, 1]]);
  });

  test('the replicated orchestrator leaves jobs alone', async () => {
    await setup({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });
    orch = new Orchestrator({ store, clock });
    orch.start();
    await finishAll('complete');
    clock.advance(60_000);
    await settle(store);
    expect(tasksOf(store, 'job').map((t) => [t.Status.State, t.DesiredState])).toEqual([['complete', 'complete']]);
  });
});

describe('JobOrchestrator, global job', () => {
  test('one task per eligible node, once; a node that joins later runs it too', async () => {
    const nodes = [makeNode({ id: 'n1' }), makeNode({ id: 'n2' }), makeNode({ id: 'n3', availability: 'drain' }), makeNode({ id: 'n4', labels: { zone: 'b' } })];
    await setup({ GlobalJob: {} }, { TaskTemplate: { ...noDelay, Placement: { Constraints: ['node.labels.zone!=b'] } } }, nodes);
    expect(liveTasks(store, 'job').map((t) => [t.Slot, t.NodeID]).sort()).toEqual([[0, 'n1'], [0, 'n2']]);
    for (const t of liveTasks(store, 'job')) await setState(t.ID, 'complete', t.NodeID);
    expect(liveTasks(store, 'job')).toHaveLength(0);
    await store.update((tx) => tx.create('nodes', makeNode({ id: 'n5' })));
    await settle(store);
    expect(liveTasks(store, 'job').map((t) => t.NodeID)).toEqual(['n5']);
  });

  test('a failed task is retried on its node per the restart policy', async () => {
    await setup({ GlobalJob: {} }, { TaskTemplate: { Runtime: 'mock', RestartPolicy: { Condition: 'on-failure', Delay: 0, MaxAttempts: 2 } } });
    for (let i = 0; i < 3; i++) await finishAll('failed');
    expect(tasksOf(store, 'job').map((t) => t.RestartAttempts).sort()).toEqual([0, 1, 2]);
    expect(liveTasks(store, 'job')).toHaveLength(0);
    expect(tasksOf(store, 'job').every((t) => t.NodeID === 'n1')).toBe(true);
  });
});
