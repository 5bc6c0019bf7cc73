import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockExecutor, ManualClock, newMockRegistry } from '../../plugins/mock/index.ts';
import { ExecutorCatalog } from '../executor/catalog.ts';
import { memoryConnPair } from '../manager/dispatcher/conn.ts';
import { Dispatcher } from '../manager/dispatcher/dispatcher.ts';
import { addNode, addTasks, description, makeTask, waitFor } from '../manager/dispatcher/testkit.ts';
import { memoryStore, type MemoryStore } from '../store/index.ts';
import type { TaskSpec } from '../types/index.ts';
import { Agent } from './agent.ts';
import { SecretCache, TaskFileMounts } from './secret-files.ts';

const root = process.getuid?.() === 0;
let dir: string;
let store: MemoryStore;
let dispatcher: Dispatcher;
const agents: Agent[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-secrets-'));
  store = memoryStore();
  dispatcher = new Dispatcher({ store, clock: new ManualClock(1_000_000), random: () => 0 });
  dispatcher.start();
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  await dispatcher.stop();
  rmSync(dir, { recursive: true, force: true });
});

const mounted = (path: string) => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === path);

describe('secrets on a worker', () => {
  test.skipIf(!root)('a task gets its secret in a tmpfs with its mode and owner; the tmpfs and the memory copy go when the task ends', async () => {
    const nodeId = await addNode(store);
    const mclock = new ManualClock(1_000_000);
    const a = new Agent({
      nodeId, dataDir: join(dir, 'data'), taskFilesDir: join(dir, 'files'),
      catalog: new ExecutorCatalog([createMockExecutor({ clock: mclock, registry: newMockRegistry() })]),
      connect: async () => { const [w, m] = memoryConnPair(); dispatcher.accept(m); return w; },
      description: () => description('w'), clock: new ManualClock(1_000_000), random: () => 0,
    });
    agents.push(a);
    await a.start();
    expect(await a.session.registered(2000)).toBe(true);
    await store.update((tx) => tx.create('secrets', { ID: 's1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'pw', Data: Buffer.from('s3cret').toString('base64') } }));
    const spec: TaskSpec = { Runtime: 'mock', MockSpec: { RunFor: 5e9, Secrets: [{ SecretID: 's1', SecretName: 'pw', File: { Name: 'pw', UID: '65534', GID: '65534', Mode: 0o400 } }] } };
    const [t] = await addTasks(store, [makeTask(nodeId, { spec })]);
    await waitFor(() => store.get('tasks', t!.ID)!.Status.State === 'running', 'running');
    const tdir = join(dir, 'files', t!.ID);
    expect(mounted(tdir)).toBe(true);
    const file = join(tdir, 'secrets', 'pw');
    expect(readFileSync(file, 'utf8')).toBe('s3cret');
    const st = statSync(file);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o400, 65534, 65534]);
    expect(a.secrets.size).toBe(1);
    mclock.advance(5_000);
    await waitFor(() => store.get('tasks', t!.ID)!.Status.State === 'complete', 'complete');
    await waitFor(() => !mounted(tdir) && !existsSync(tdir), 'tmpfs released');
    await waitFor(() => a.secrets.size === 0, 'memory copy forgotten');
  });

  test('without root a task with secrets is refused with a clear error, and nothing is written', async () => {
    const cache = new SecretCache();
    cache.apply({ upserts: [{ kind: 'secret', id: 's1', name: 'pw', data: new Uint8Array([1]) }], removed: [] });
    const m = new TaskFileMounts({ root: join(dir, 'files'), cache, isRoot: () => false });
    const task = makeTask('n', { spec: { Runtime: 'mock', MockSpec: { Secrets: [{ SecretID: 's1', SecretName: 'pw' }] } } });
    await expect(m.prepare(task)).rejects.toThrow('needs the daemon to run as root');
    expect(existsSync(join(dir, 'files'))).toBe(false);
  });

  test('a secret that has not reached the node is named', async () => {
    const m = new TaskFileMounts({ root: join(dir, 'files'), cache: new SecretCache(), isRoot: () => true });
    const task = makeTask('n', { spec: { Runtime: 'mock', MockSpec: { Secrets: [{ SecretID: 's9', SecretName: 'db' }] } } });
    await expect(m.prepare(task)).rejects.toThrow('secret db (s9) has not reached this node');
  });

  test('the cache zeroes and forgets withdrawn data, and keeps only what a new session\'s tasks use', () => {
    const cache = new SecretCache();
    const data = new Uint8Array([7, 7]);
    cache.apply({ upserts: [{ kind: 'secret', id: 'a', name: 'a', data }, { kind: 'config', id: 'b', name: 'b', data: new Uint8Array([1]) }], removed: [] });
    cache.apply({ upserts: [], removed: [{ kind: 'secret', id: 'a' }] });
    expect(cache.get('secret', 'a')).toBeUndefined();
    expect([...data]).toEqual([0, 0]);
    cache.retainFor([makeTask('n', { spec: { Runtime: 'mock', MockSpec: { Configs: [{ ConfigID: 'b', ConfigName: 'b' }] } } })]);
    expect(cache.size).toBe(1);
    cache.retainFor([]);
    expect(cache.size).toBe(0);
  });
});

describe('a runner and secrets', () => {
  test('a runtime that cannot take secrets rejects the task, naming the runtime; no files are made', async () => {
    const { TaskRunner } = await import('./runner.ts');
    const mock = createMockExecutor({ registry: newMockRegistry() });
    const plain = { ...mock, name: 'mock', capabilities: { ...mock.capabilities, secrets: false } };
    const reports: { state: string; msg: string }[] = [];
    let prepared = 0;
    const task = makeTask('n', { state: 'assigned', spec: { Runtime: 'mock', MockSpec: { Secrets: [{ SecretID: 's1', SecretName: 'pw' }] } } });
    const r = new TaskRunner(task, {
      catalog: { get: () => plain }, dataDir: dir,
      files: { prepare: async () => { prepared++; return undefined; }, release: async () => {} },
      report: (_id, s) => reports.push({ state: s.State, msg: s.Err ?? '' }),
    });
    r.start();
    await r.done;
    expect(reports.at(-1)).toEqual({ state: 'rejected', msg: 'secrets: runtime "mock" cannot give secrets or configs to its tasks' });
    expect(prepared).toBe(0);
  });
});
