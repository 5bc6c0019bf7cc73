import { describe, expect, test } from 'bun:test';
import { decode, encodeEntry } from '../lib/codec.ts';
import { ConflictError } from '../lib/errors.ts';
import { makeNode, makeService, makeTask } from '../manager/testkit.ts';
import { describedAs } from '../manager/dispatcher/session.ts';
import type { Task } from '../types/index.ts';
import type { Batch } from './actions.ts';
import { managersApplyPatches, TASK_PATCH_FEATURE } from './patch.ts';
import { MemoryStore } from './store.ts';

/**
 * A leader's store and a follower's, on one log: every entry the leader proposes is applied by both,
 * in order, from the same bytes (as raft hands a committed entry to every replica); the leader, as
 * the raft host does, with the batch it built (`local`) rather than a decode of them.
 */
function replicas(patches: MemoryStore['taskPatches']) {
  const leader = new MemoryStore();
  const follower = new MemoryStore();
  leader.taskPatches = patches;
  const entries: Batch[] = [];
  let index = 0;
  leader.proposer = {
    async propose(entry: Uint8Array, _signal?: AbortSignal, local?: unknown) {
      await Promise.resolve();
      entries.push(decode<Batch>(entry));
      const i = ++index;
      follower.apply(i, entry);
      return leader.apply(i, entry, local);
    },
    async readBarrier() {},
  };
  return { leader, follower, entries };
}

const manager = (features?: string[]) => {
  const n = makeNode({ role: 'manager' });
  if (features) n.Description!.Features = features;
  return n;
};

const encodeBatch = (b: unknown): Uint8Array => encodeEntry(b as Batch);

async function seedTask(store: MemoryStore): Promise<Task> {
  const svc = makeService('web', { TaskTemplate: { Runtime: 'mock', ForceUpdate: 3 } });
  const t = makeTask(svc.ID, { state: 'pending', Labels: { keep: 'me' } } as Partial<Task>);
  await store.update((tx) => {
    tx.create('services', svc);
    tx.create('tasks', t);
  });
  return store.get('tasks', t.ID)!;
}

describe('task updates as patches', () => {
  test('the replica that proposed keeps the objects it wrote, not a decode of them; the tables are the same', async () => {
    const { leader, follower } = replicas(true);
    const labels = { keep: 'me' };
    const t = makeTask('svc', { state: 'pending', Labels: labels } as Partial<Task>);
    await leader.update((tx) => tx.create('tasks', t));
    expect((leader.get('tasks', t.ID) as Task & { Labels: unknown }).Labels).toBe(labels);
    expect((follower.get('tasks', t.ID) as Task & { Labels: unknown }).Labels).not.toBe(labels);
    expect(follower.snapshot()).toEqual(leader.snapshot());
  });

  test('a task update is written as what changed, and every replica ends with the same task', async () => {
    const { leader, follower, entries } = replicas(true);
    const t = await seedTask(leader);
    const { Labels: _gone, ...rest } = t as Task & { Labels?: unknown };
    await leader.update((tx) => tx.update('tasks', { ...rest, NodeID: 'n1', Status: { State: 'assigned', Timestamp: 'x', Message: 'assigned' } } as Task));

    const [action] = entries.at(-1)!.actions;
    expect(action).toEqual({ op: 'patch', table: 'tasks', id: t.ID, version: t.Version.Index, set: { NodeID: 'n1', Status: { State: 'assigned', Timestamp: 'x', Message: 'assigned' } }, unset: ['Labels'] });
    const after = leader.get('tasks', t.ID)!;
    expect(after.Version.Index).toBe(t.Version.Index + 1);
    expect(after.NodeID).toBe('n1');
    expect(after.Status.State).toBe('assigned');
    expect('Labels' in after).toBe(false);
    expect(after.CreatedAt).toBe(t.CreatedAt);
    // What the patch did not name is the previous version's own (the spec is not decoded again).
    expect(after.Spec).toBe(t.Spec);
    expect(follower.get('tasks', t.ID)).toEqual(after);
    expect(follower.snapshot()).toEqual(leader.snapshot());
  });

  test('a patch of a version that moved on is refused like an update, and changes nothing', async () => {
    const { leader, follower } = replicas(true);
    const t = await seedTask(leader);
    await leader.update((tx) => tx.update('tasks', { ...t, DesiredState: 'shutdown' }));
    await expect(leader.update((tx) => tx.update('tasks', { ...t, NodeID: 'n2' }))).rejects.toThrow(ConflictError);
    await Promise.resolve();
    expect(leader.get('tasks', t.ID)!.NodeID).toBe('');
    expect(follower.snapshot()).toEqual(leader.snapshot());
  });

  test('written whole when patches are off; the tasks end the same either way', async () => {
    const runs = [];
    for (const patches of [false, true]) {
      const { leader, entries } = replicas(patches);
      const t = await seedTask(leader);
      await leader.update((tx) => tx.update('tasks', { ...t, Status: { ...t.Status, State: 'running' } }));
      runs.push({ op: entries.at(-1)!.actions[0]!.op, task: leader.get('tasks', t.ID)! });
    }
    expect(runs.map((r) => r.op)).toEqual(['update', 'patch']);
    const strip = (x: Task) => ({ ...x, CreatedAt: '', UpdatedAt: '' });
    expect(strip(runs[1]!.task)).toEqual(strip({ ...runs[0]!.task, ID: runs[1]!.task.ID, ServiceID: runs[1]!.task.ServiceID }));
  });

  test('only while every manager lists the feature (auto)', async () => {
    const { leader, entries } = replicas('auto');
    const t = await seedTask(leader);
    const old = manager();
    await leader.update((tx) => {
      tx.create('nodes', manager([TASK_PATCH_FEATURE]));
      tx.create('nodes', old);
      tx.create('nodes', makeNode()); // a worker's build does not matter
    });
    await leader.update((tx) => tx.update('tasks', { ...leader.get('tasks', t.ID)!, NodeID: 'a' }));
    expect(entries.at(-1)!.actions[0]!.op).toBe('update');
    // The old manager comes back on a build that has it.
    const o = leader.get('nodes', old.ID)!;
    await leader.update((tx) => tx.update('nodes', { ...o, Description: { ...o.Description!, Features: [TASK_PATCH_FEATURE] } }));
    await leader.update((tx) => tx.update('tasks', { ...leader.get('tasks', t.ID)!, NodeID: 'b' }));
    expect(entries.at(-1)!.actions[0]!.op).toBe('patch');
    expect(leader.get('tasks', t.ID)!.NodeID).toBe('b');
  });

  test('managersApplyPatches: every manager (by role or by raft membership), and at least one', () => {
    expect(managersApplyPatches([])).toBe(false);
    expect(managersApplyPatches([makeNode()])).toBe(false);
    expect(managersApplyPatches([manager([TASK_PATCH_FEATURE]), makeNode()])).toBe(true);
    expect(managersApplyPatches([manager([TASK_PATCH_FEATURE]), manager(['other'])])).toBe(false);
    const demoting = { ...makeNode(), ManagerStatus: { Reachability: 'reachable' as const, Addr: '' } };
    expect(managersApplyPatches([manager([TASK_PATCH_FEATURE]), demoting])).toBe(false);
  });

  test('an action this build does not know stops the replica with a clear error, on any replica', () => {
    const s = new MemoryStore();
    const bad = { at: new Date().toISOString(), actions: [{ op: 'merge', table: 'tasks', id: 'x' }] };
    expect(() => s.apply(1, encodeBatch(bad))).toThrow(/"merge" action, which this build of shoal cannot apply/);
  });

  test('a patch of another table than tasks is refused on every replica', () => {
    const s = new MemoryStore();
    const r = s.apply(1, encodeBatch({ at: new Date().toISOString(), actions: [{ op: 'patch', table: 'services', id: 'x', version: 1, set: {} }] }));
    expect(r).toEqual({ ok: false, status: 409, message: 'a patch of services: only tasks are written as patches' });
  });

  test("a node's description keeps the features its build sends, and loses them when a build sends none", () => {
    const stored = makeNode().Description!;
    const withF = describedAs(stored, { ...stored, Features: [TASK_PATCH_FEATURE, 7 as unknown as string] });
    expect(withF.Features).toEqual([TASK_PATCH_FEATURE]);
    const { Features: _f, ...older } = withF;
    expect(describedAs(withF, older).Features).toBeUndefined();
  });
});
