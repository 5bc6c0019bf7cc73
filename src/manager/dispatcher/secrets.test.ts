import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../../plugins/mock/clock.ts';
import { memoryStore, type MemoryStore } from '../../store/index.ts';
import type { TaskSpec } from '../../types/index.ts';
import { Dispatcher } from './dispatcher.ts';
import { addNode, addTasks, changeTask, makeTask, RawWorker, waitFor } from './testkit.ts';

let store: MemoryStore;
let dispatcher: Dispatcher;

afterEach(async () => { await dispatcher?.stop(); });

async function setup(): Promise<{ secretId: string; spec: TaskSpec }> {
  store = memoryStore();
  dispatcher = new Dispatcher({ store, clock: new ManualClock(1_000_000), random: () => 0, heartbeatPeriodMs: 1000 });
  dispatcher.start();
  const secretId = 'sec1';
  await store.update((tx) => tx.create('secrets', { ID: secretId, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'pw', Data: Buffer.from('s3cret').toString('base64') } }));
  const spec: TaskSpec = { Runtime: 'mock', MockSpec: { Secrets: [{ SecretID: secretId, SecretName: 'pw', File: { Name: 'pw' } }] } };
  return { secretId, spec };
}

const text = (d: Uint8Array) => Buffer.from(d).toString();

describe('secret assignments', () => {
  test('only the node whose task uses a secret receives it, before the task; it is withdrawn once the task is terminal', async () => {
    const { secretId, spec } = await setup();
    const a = await addNode(store);
    const b = await addNode(store);
    const wa = new RawWorker(dispatcher);
    const wb = new RawWorker(dispatcher);
    await wa.register(a, ['secrets']);
    await wb.register(b, ['secrets']);
    await addTasks(store, [makeTask(b), makeTask(a, { spec, id: 'ta' })]);
    await waitFor(() => wa.of('secrets').length === 1 && wb.of('assignments').length >= 2, 'frames');
    const sec = wa.of('secrets')[0]!;
    expect(sec.upserts.map((p) => [p.kind, p.id, p.name, text(p.data)])).toEqual([['secret', secretId, 'pw', 's3cret']]);
    // The secrets frame precedes the assignment that needs it.
    const order = wa.received.map((m) => m.t).filter((t) => t === 'secrets' || t === 'assignments');
    expect(order.slice(-2)).toEqual(['secrets', 'assignments']);
    expect(wb.of('secrets')).toEqual([]);
    expect(JSON.stringify(wb.received.map((m) => m.b))).not.toContain('s3cret');

    await changeTask(store, 'ta', (t) => ({ ...t, Status: { ...t.Status, State: 'complete' } }));
    await waitFor(() => wa.of('secrets').length === 2, 'withdrawal');
    expect(wa.of('secrets')[1]).toEqual({ upserts: [], removed: [{ kind: 'secret', id: secretId }] });
  });

  test('a new session gets what its unfinished tasks need; a worker that does not accept secrets gets none', async () => {
    const { spec } = await setup();
    const a = await addNode(store);
    const old = await addNode(store);
    await addTasks(store, [makeTask(a, { spec, state: 'running' }), makeTask(old, { spec, state: 'running' })]);
    const wa = new RawWorker(dispatcher);
    await wa.register(a, ['secrets']);
    await waitFor(() => wa.of('assignments').length === 1, 'full set');
    expect(wa.of('secrets').flatMap((f) => f.upserts.map((p) => p.name))).toEqual(['pw']);
    const wo = new RawWorker(dispatcher);
    await wo.register(old);
    await waitFor(() => wo.of('assignments').length === 1, 'full set');
    expect(wo.of('secrets')).toEqual([]);
  });
});
