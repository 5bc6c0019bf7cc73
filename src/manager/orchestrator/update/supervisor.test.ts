import { afterEach, describe, expect, test } from 'bun:test';
import { type MemoryStore, memoryStore } from '../../../store/index.ts';
import { NS_PER_S, type ServiceSpec, type TaskState, type UpdateConfig } from '../../../types/index.ts';
import { ManualClock } from '../../stage.ts';
import { liveTasks, makeNode, makeService, settle } from '../../testkit.ts';
import { Orchestrator } from '../orchestrator.ts';

let store: MemoryStore;
let clock: ManualClock;
let orch: Orchestrator | null = null;
afterEach(async () => {
  await orch?.stop();
  orch = null;
});

const V1 = { Runtime: 'mock', MockSpec: { ExitCode: 1 } };
const V2 = { Runtime: 'mock', MockSpec: { ExitCode: 2 } };

async function setup(update: UpdateConfig, replicas = 3, extra: Partial<ServiceSpec> = {}): Promise<void> {
  store = memoryStore();
  clock = new ManualClock();
  await store.update((tx) => {
    tx.create('nodes', makeNode({ id: 'n1' }));
    tx.create('services', makeService('web', { Mode: { Replicated: { Replicas: replicas } }, TaskTemplate: V1, UpdateConfig: update, ...extra }, 'web'));
  });
  orch = new Orchestrator({ store, clock });
  orch.start();
  await settle(store);
  await runAll();
}

const svc = () => store.get('services', 'web')!;

async function setState(id: string, state: TaskState, err?: string) {
  const t = store.get('tasks', id)!;
  await store.update((tx) => tx.update('tasks', { ...t, NodeID: t.NodeID || 'n1', Status: { ...t.Status, State: state, ...(err ? { Err: err, Message: err } : {}) } }));
  await settle(store);
}

/** Every live task that is not running yet and not asked to stop: running. */
async function runAll() {
  for (const t of liveTasks(store, 'web')) if (t.Status.State !== 'running' && t.DesiredState === 'running') await setState(t.ID, 'running');
}

/** Every task asked to stop: stopped. */
async function stopAll() {
  for (const t of store.by('tasks', 'service', 'web')) if (t.DesiredState === 'shutdown' && t.Status.State === 'running') await setState(t.ID, 'shutdown');
}

/** As the API does: the new spec, the old one kept, the update status cleared. */
async function update(fn: (s: ServiceSpec) => ServiceSpec) {
  const s = svc();
  await store.update((tx) => tx.update('services', { ...s, PreviousSpec: s.Spec, Spec: fn(s.Spec), UpdateStatus: undefined }));
  await settle(store);
}
const toV2 = (s: ServiceSpec): ServiceSpec => ({ ...s, TaskTemplate: V2 });
const v2Tasks = () => liveTasks(store, 'web').filter((t) => t.Spec.MockSpec?.ExitCode === 2);

async function advance(ms: number) {
  clock.advance(ms);
  await settle(store);
}

describe('update supervisor', () => {
  test('an update that runs everything completes after the monitor period', async () => {
    await setup({ Parallelism: 2, Monitor: 2 * NS_PER_S });
    await update(toV2);
    expect(svc().UpdateStatus).toMatchObject({ State: 'updating', Message: 'update in progress' });
    for (let i = 0; i < 3; i++) {
      await stopAll();
      await runAll();
    }
    expect(v2Tasks()).toHaveLength(3);
    expect(svc().UpdateStatus!.State).toBe('updating'); // still watching the last batch
    await advance(2_000);
    expect(svc().UpdateStatus).toMatchObject({ State: 'completed', Message: 'update completed' });
    expect(svc().UpdateStatus!.CompletedAt).toBeString();
  });

  test('a replacement that fails pauses the update, naming the task; an update resumes it', async () => {
    await setup({ Parallelism: 1 });
    await update(toV2);
    await stopAll();
    const [bad] = v2Tasks();
    await setState(bad!.ID, 'failed', 'exit code 2');
    const st = svc().UpdateStatus!;
    expect(st.State).toBe('paused');
    expect(st.Message).toContain(bad!.ID.slice(0, 12));
    expect(st.Message).toContain('exit code 2');
    // Paused: no further slot is touched while the failed slot restarts.
    await advance(5_000);
    await runAll();
    expect(liveTasks(store, 'web').filter((t) => t.Spec.MockSpec?.ExitCode === 1)).toHaveLength(2);
    await update((s) => s); // as `service update` with nothing changed
    expect(svc().UpdateStatus!.State).toBe('updating');
    for (let i = 0; i < 3; i++) {
      await stopAll();
      await runAll();
    }
    expect(v2Tasks()).toHaveLength(3);
  });

  test('a task that ends within Monitor is a failure; after Monitor it is not', async () => {
    await setup({ Parallelism: 1, Monitor: 1 * NS_PER_S, FailureAction: 'pause' }, 2);
    await update(toV2);
    await stopAll();
    await runAll();
    const [first] = v2Tasks();
    await advance(1_001);
    await setState(first!.ID, 'failed', 'late');
    expect(svc().UpdateStatus!.State).toBe('updating');
    await stopAll();
    await runAll();
    const second = v2Tasks().find((t) => t.Slot !== first!.Slot)!;
    await setState(second.ID, 'complete');
    expect(svc().UpdateStatus).toMatchObject({ State: 'paused' });
  });

  test('MaxFailureRatio tolerates failures up to the ratio; continue ignores them', async () => {
    await setup({ Parallelism: 0, MaxFailureRatio: 0.5 }, 4);
    await update(toV2);
    await stopAll();
    const fresh = v2Tasks();
    await setState(fresh[0]!.ID, 'failed', 'one');
    await setState(fresh[1]!.ID, 'failed', 'two');
    expect(svc().UpdateStatus!.State).toBe('updating'); // 2/4 is not over 0.5
    await setState(fresh[2]!.ID, 'failed', 'three');
    expect(svc().UpdateStatus!.State).toBe('paused');

    await orch!.stop();
    await setup({ Parallelism: 1, FailureAction: 'continue' }, 2);
    await update(toV2);
    await stopAll();
    await setState(v2Tasks()[0]!.ID, 'failed', 'ignored');
    expect(svc().UpdateStatus!.State).toBe('updating');
    expect(store.by('tasks', 'service', 'web').filter((t) => t.DesiredState === 'shutdown' && t.Spec.MockSpec?.ExitCode === 1)).toHaveLength(2); // next slot went on
  });

  test('FailureAction rollback puts the previous spec back and rolls it out under RollbackConfig', async () => {
    await setup({ Parallelism: 1, FailureAction: 'rollback' }, 3, { RollbackConfig: { Parallelism: 0, Monitor: 0 } });
    await update((s) => ({ ...toV2(s), Labels: { v: '2' } }));
    await stopAll();
    await runAll();
    await stopAll();
    const bad = v2Tasks().find((t) => t.Status.State !== 'running')!;
    await setState(bad.ID, 'failed', 'unhealthy');
    const s = svc();
    expect(s.UpdateStatus).toMatchObject({ State: 'rollback_started' });
    expect(s.UpdateStatus!.Message).toStartWith('update rolled back due to failure or early termination of task');
    expect(s.Spec.TaskTemplate).toEqual(V1);
    expect(s.Spec.Labels).toBeUndefined();
    expect(s.PreviousSpec!.TaskTemplate).toEqual(V2);
    // Parallelism 0 while rolling back: every slot with a V2 task at once.
    await stopAll();
    await runAll();
    await advance(5_000); // the failed slot's restart delay
    await runAll();
    expect(v2Tasks()).toHaveLength(0);
    expect(liveTasks(store, 'web').filter((t) => t.Status.State === 'running')).toHaveLength(3);
    expect(svc().UpdateStatus!.State).toBe('rollback_completed');
    expect(svc().UpdateStatus!.Message).toStartWith('rollback completed (update rolled back due to failure or early termination of task');
  });

  test('a rollback that fails pauses as rollback_paused', async () => {
    await setup({ Parallelism: 1 }, 1);
    await update(toV2);
    await stopAll();
    await runAll();
    await advance(5_000);
    expect(svc().UpdateStatus!.State).toBe('completed');
    const s = svc();
    await store.update((tx) => tx.update('services', { ...s, Spec: s.PreviousSpec!, PreviousSpec: s.Spec, UpdateStatus: { State: 'rollback_started', Message: 'manually requested rollback' } }));
    await settle(store);
    await stopAll();
    const back = liveTasks(store, 'web').find((t) => t.Spec.MockSpec?.ExitCode === 1)!;
    await setState(back.ID, 'rejected', 'no such image');
    expect(svc().UpdateStatus).toMatchObject({ State: 'rollback_paused' });
    expect(svc().UpdateStatus!.Message).toStartWith('rollback paused due to');
  });

  test('start-first: a failing successor leaves the old task running', async () => {
    await setup({ Parallelism: 1, Order: 'start-first' }, 2);
    const old = liveTasks(store, 'web');
    await update(toV2);
    const [next] = v2Tasks();
    await setState(next!.ID, 'failed', 'boom');
    expect(svc().UpdateStatus!.State).toBe('paused');
    for (const t of old) expect(store.get('tasks', t.ID)!.DesiredState).toBe('running');
  });

  test('a global service: one node at a time, and a failure pauses', async () => {
    store = memoryStore();
    clock = new ManualClock();
    await store.update((tx) => {
      for (const id of ['a', 'b', 'c']) tx.create('nodes', makeNode({ id }));
      tx.create('services', makeService('web', { Mode: { Global: {} }, TaskTemplate: V1 }, 'web'));
    });
    orch = new Orchestrator({ store, clock });
    orch.start();
    await settle(store);
    await runAll();
    await update(toV2);
    await stopAll();
    const [first] = v2Tasks();
    expect(v2Tasks()).toHaveLength(1);
    await setState(first!.ID, 'failed', 'bad');
    expect(svc().UpdateStatus).toMatchObject({ State: 'paused' });
    expect(svc().UpdateStatus!.Message).toContain(`web.${first!.NodeID}`);
    expect(liveTasks(store, 'web').filter((t) => t.Spec.MockSpec?.ExitCode === 1)).toHaveLength(2);
  });

  test('Parallelism is a window: a slot freed by a running replacement takes the next one at once', async () => {
    await setup({ Parallelism: 2 }, 4);
    await update(toV2);
    await stopAll();
    const [a, b] = v2Tasks();
    expect(v2Tasks()).toHaveLength(2);
    await setState(a!.ID, 'running');
    // b is still starting; one slot is free: a third old task is being replaced already.
    expect(store.by('tasks', 'service', 'web').filter((t) => t.Spec.MockSpec?.ExitCode === 1 && t.DesiredState === 'shutdown')).toHaveLength(3);
    expect(store.get('tasks', b!.ID)!.Status.State).toBe('pending');
  });
});
