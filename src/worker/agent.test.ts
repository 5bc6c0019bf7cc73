import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockExecutor, ManualClock, newMockRegistry, type MockRegistry } from '../../plugins/mock/index.ts';
import { ExecutorCatalog } from '../executor/catalog.ts';
import { memoryConnPair, type Conn } from '../manager/dispatcher/conn.ts';
import { Dispatcher } from '../manager/dispatcher/dispatcher.ts';
import { addNode, addTasks, changeTask, description, makeTask, waitFor } from '../manager/dispatcher/testkit.ts';
import { memoryStore, type MemoryStore } from '../store/index.ts';
import type { TaskState } from '../types/index.ts';
import { Agent, type AgentOptions } from './agent.ts';
import { LOST_WHILE_DOWN } from './runner.ts';

let dir: string;
let store: MemoryStore;
let dclock: ManualClock; // the dispatcher's
let wclock: ManualClock; // the worker's session
let mclock: ManualClock; // the mock executor's: task run times
let dispatcher: Dispatcher;
let registry: MockRegistry;
let nodeId: string;
let conns: Conn[];
const agents: Agent[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-agent-'));
  store = memoryStore();
  dclock = new ManualClock(1_000_000);
  wclock = new ManualClock(1_000_000);
  mclock = new ManualClock(1_000_000);
  dispatcher = new Dispatcher({ store, clock: dclock, random: () => 0 });
  dispatcher.start();
  registry = newMockRegistry();
  nodeId = await addNode(store);
  conns = [];
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  await dispatcher.stop();
  rmSync(dir, { recursive: true, force: true });
});

function agent(o: Partial<AgentOptions> = {}): Agent {
  const a = new Agent({
    nodeId,
    dataDir: dir,
    catalog: new ExecutorCatalog([createMockExecutor({ clock: mclock, registry })]),
    connect: async () => {
      const [worker, manager] = memoryConnPair({ chunkBytes: 64 });
      dispatcher.accept(manager);
      conns.push(worker);
      return worker;
    },
    description: () => description('worker-1'),
    clock: wclock,
    random: () => 0,
    backoff: { initialMs: 10, maxMs: 10 },
    ...o,
  });
  agents.push(a);
  return a;
}

const stateOf = (id: string): TaskState => store.get('tasks', id)!.Status.State;
const reaches = (id: string, s: TaskState) => waitFor(() => stateOf(id) === s, `task ${id} ${s} (is ${stateOf(id)})`);

describe('Agent with a Dispatcher', () => {
  test('registers with its runtimes, and an assigned task reaches running', async () => {
    const a = agent();
    await a.start();
    expect(await a.session.registered(1000)).toBe(true);
    const node = store.get('nodes', nodeId)!;
    expect(node.Status.State).toBe('ready');
    expect(node.Description.Runtimes).toEqual([{ Name: 'mock', Healthy: true }]);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    expect(existsSync(join(dir, 'tasks', t!.ID))).toBe(true);
    expect(registry.get(t!.ID)!.phase).toBe('running');
    // The worker's reports coming back through the store sent no assignment frames.
    expect(dispatcher.session(nodeId)!.sent.assignments).toBe(2);
  });

  test('every step is reported, in order, never backwards', async () => {
    const seen: TaskState[] = [];
    const a = agent();
    await a.start();
    await a.session.registered(1000);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    const unwatch = store.watch((ev) => {
      if (ev.kind === 'update' && ev.object.ID === t!.ID) seen.push((ev.object as typeof t & {}).Status.State);
    });
    await reaches(t!.ID, 'running');
    unwatch();
    const ranks = seen.map((s) => ['accepted', 'preparing', 'ready', 'starting', 'running'].indexOf(s));
    expect(ranks).toEqual([...ranks].sort((x, y) => x - y));
    expect(seen.at(-1)).toBe('running');
  });

  test('desired shutdown stops the task; desired remove then releases it', async () => {
    const a = agent();
    await a.start();
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    await changeTask(store, t!.ID, (x) => ({ ...x, DesiredState: 'shutdown' }));
    await reaches(t!.ID, 'shutdown');
    expect(registry.get(t!.ID)!.phase).toBe('exited');
    await changeTask(store, t!.ID, (x) => ({ ...x, DesiredState: 'remove' }));
    await waitFor(() => a.task(t!.ID) === undefined && !registry.has(t!.ID), 'runner removed');
    await waitFor(() => !existsSync(join(dir, 'tasks', t!.ID)), 'task dir removed');
  });

  test('an unknown runtime is rejected with a message naming it', async () => {
    const a = agent();
    await a.start();
    const [t] = await addTasks(store, [makeTask(nodeId, { spec: { Runtime: 'quantum' } })]);
    await reaches(t!.ID, 'rejected');
    expect(store.get('tasks', t!.ID)!.Status.Message).toContain('"quantum"');
  });

  test('a start error fails the task (it may have run); a non-zero exit fails it with the exit code', async () => {
    const a = agent();
    await a.start();
    const [bad, exits] = await addTasks(store, [
      makeTask(nodeId, { spec: { Runtime: 'mock', MockSpec: { StartError: 'no such program' } } }),
      makeTask(nodeId, { spec: { Runtime: 'mock', MockSpec: { RunFor: 5e9, ExitCode: 3 } } }),
    ]);
    await reaches(bad!.ID, "failed"); // start errors come from `starting` on: the work may have run
    expect(store.get('tasks', bad!.ID)!.Status.Err).toBe('no such program');
    await reaches(exits!.ID, 'running');
    mclock.advance(5_000);
    await reaches(exits!.ID, 'failed');
    expect(store.get('tasks', exits!.ID)!.Status.ContainerStatus?.ExitCode).toBe(3);
  });

  test('a node that stops heartbeating is marked down', async () => {
    const a = agent();
    await a.start();
    await a.session.registered(1000);
    // The worker's clock stands still: it never sends a heartbeat; the dispatcher's moves on.
    dclock.advance(2_999);
    await Promise.resolve();
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    dclock.advance(1);
    await waitFor(() => store.get('nodes', nodeId)!.Status.State === 'down', 'node down');
  });

  test('heartbeats keep the node ready while both clocks move', async () => {
    const a = agent();
    await a.start();
    await a.session.registered(1000);
    for (let i = 0; i < 10; i++) {
      wclock.advance(1000);
      const acks = dispatcher.session(nodeId)!.sent['heartbeat.ack'] ?? 0;
      await waitFor(() => (dispatcher.session(nodeId)!.sent['heartbeat.ack'] ?? 0) > acks, 'heartbeat acked');
      dclock.advance(1000);
    }
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    expect(a.session.registrations).toBe(1);
  });

  test('the session reconnects after a break; tasks keep running and changes made meanwhile arrive', async () => {
    const a = agent();
    await a.start();
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    const run = registry.get(t!.ID);
    conns[0]!.close('network cut');
    await waitFor(() => !a.session.connected, 'disconnected');
    await changeTask(store, t!.ID, (x) => ({ ...x, DesiredState: 'shutdown' }));
    wclock.advance(10); // the back-off
    expect(await a.session.registered(1000, 2)).toBe(true);
    expect(conns).toHaveLength(2);
    await reaches(t!.ID, 'shutdown');
    expect(registry.get(t!.ID)).toBe(run!); // the same run, stopped, not a restart
  });

  test('a refused registration is retried with back-off, and succeeds once the node exists', async () => {
    nodeId = 'not-yet-joined';
    const a = agent();
    await a.start();
    await waitFor(() => conns.length === 1 && conns[0]!.closed, 'first attempt refused');
    expect(a.session.connected).toBe(false);
    await addNode(store, 'not-yet-joined');
    for (let i = 0; i < 50 && !a.session.connected; i++) {
      wclock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    expect(await a.session.registered(1000)).toBe(true);
  });

  test('stop() stops every task and reports the final state before closing', async () => {
    const a = agent();
    await a.start();
    const tasks = await addTasks(store, [makeTask(nodeId), makeTask(nodeId)]);
    for (const t of tasks) await reaches(t.ID, 'running');
    await a.stop();
    for (const t of tasks) expect(stateOf(t.ID)).toBe('shutdown');
    expect([...registry.values()].every((r) => r.phase === 'exited')).toBe(true);
  });

  test('stop({ keepTasks }) leaves tasks running; a new agent re-attaches without restarting them', async () => {
    const a1 = agent();
    await a1.start();
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    const run = registry.get(t!.ID)!;
    const startedAt = run.startedAt;
    await a1.stop({ keepTasks: true });
    expect(run.phase).toBe('running');

    const a2 = agent();
    await a2.start();
    await a2.session.registered(1000);
    await waitFor(() => a2.task(t!.ID) !== undefined, 'runner');
    expect(stateOf(t!.ID)).toBe('running');
    expect(registry.get(t!.ID)!.startedAt).toBe(startedAt);
    // It is driven again: a desired shutdown reaches the recovered task.
    await changeTask(store, t!.ID, (x) => ({ ...x, DesiredState: 'shutdown' }));
    await reaches(t!.ID, 'shutdown');
  });

  test('a task seen running after a restart whose work is gone fails with a clear message', async () => {
    const a = agent();
    const [t] = await addTasks(store, [makeTask(nodeId, { state: 'running' })]);
    await a.start();
    await reaches(t!.ID, 'failed');
    expect(store.get('tasks', t!.ID)!.Status.Message).toBe(LOST_WHILE_DOWN);
  });

  test('a manager reads a task\'s logs from the worker through the dispatcher', async () => {
    const a = agent();
    await a.start();
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    const lines: string[] = [];
    for await (const l of dispatcher.taskLogs(t!.ID)) lines.push(l.line);
    expect(lines).toContain(`mock task ${t!.ID} started`);
    const tail: string[] = [];
    for await (const l of dispatcher.taskLogs(t!.ID, { tail: 1 })) tail.push(l.line);
    expect(tail).toEqual([lines.at(-1)!]);
    const local: string[] = [];
    for await (const l of a.taskLogs(t!.ID, { tail: 1 })) local.push(l.line);
    expect(local).toEqual([lines.at(-1)!]);
  });

  test('following logs ends when the reader aborts', async () => {
    const a = agent();
    await a.start();
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    const ac = new AbortController();
    const lines: string[] = [];
    for await (const l of dispatcher.taskLogs(t!.ID, { follow: true, signal: ac.signal })) {
      lines.push(l.line);
      if (lines.length === 2) ac.abort();
    }
    expect(lines).toHaveLength(2);
  });

  test('a runtime whose health changes is reported again, and only then', async () => {
    let engineUp = false;
    let probes = 0;
    const catalog = new ExecutorCatalog([
      createMockExecutor({ clock: mclock, registry }),
      {
        ...createMockExecutor(), name: 'engine',
        fingerprint: async () => { probes++; return engineUp ? { healthy: true, attributes: {} } : { healthy: false, message: 'engine down', attributes: {} }; },
      },
    ]);
    const a = agent({ catalog, fingerprintIntervalMs: 100 });
    await a.start();
    await a.session.registered(1000);
    const runtimes = () => store.get('nodes', nodeId)!.Description.Runtimes;
    expect(runtimes()).toEqual([{ Name: 'engine', Healthy: false, Message: 'engine down' }, { Name: 'mock', Healthy: true }]);
    let nodeWrites = 0;
    const unwatch = store.watch((ev) => { if (ev.kind === 'update' && ev.table === 'nodes') nodeWrites++; });
    wclock.advance(100); // fingerprinted again, nothing changed: nothing sent
    await waitFor(() => probes === 2, 'a second fingerprint');
    engineUp = true;
    wclock.advance(99);
    expect(runtimes()![0]!.Healthy).toBe(false);
    wclock.advance(1);
    await waitFor(() => runtimes()![0]!.Healthy, 'the engine reported healthy');
    expect(runtimes()).toEqual([{ Name: 'engine', Healthy: true }, { Name: 'mock', Healthy: true }]);
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    unwatch();
    expect(nodeWrites).toBe(1);
  });
});

describe('Agent and the endpoint table', () => {
  test('the agent passes on the table after registering and when a task of a published service runs', async () => {
    await store.update((tx) => {
      const n = tx.get('nodes', nodeId)!;
      tx.update('nodes', { ...n, Description: { ...n.Description, Addr: '10.1.2.3' } });
      tx.create('services', {
        ID: 'svc', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
        Spec: { Name: 'web', TaskTemplate: { Runtime: 'mock', MockSpec: {} } as never },
        Endpoint: { Ports: [{ TargetPort: 80, PublishedPort: 8080, Protocol: 'tcp' }] },
      });
    });
    const tables: { port: number; backends: { addr: string }[] }[][] = [];
    const a = agent({ onEndpoints: (ports) => tables.push(ports) });
    await a.start();
    await waitFor(() => tables.length === 1, 'the first table');
    expect(tables[0]!.map((p) => [p.port, p.backends.length])).toEqual([[8080, 0]]);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    await reaches(t!.ID, 'running');
    await waitFor(() => tables.at(-1)?.[0]?.backends.length === 1, 'a table with the running task');
    expect(tables.at(-1)![0]!.backends[0]!.addr).toBe('10.1.2.3');
  });
});
