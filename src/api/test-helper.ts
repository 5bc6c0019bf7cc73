/** A createApp() over a memoryStore(), with fake daemon parts, for the route tests. */
import { ConflictError } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { memoryStore } from '../store/index.ts';
import type { Node, Task, TaskSpec } from '../types/index.ts';
import { createApp } from './app.ts';
import type { ApiDeps, LogLine } from './deps.ts';

export interface TestApi {
  app: ReturnType<typeof createApp>;
  deps: ApiDeps;
  logs: Map<string, LogLine[]>;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }>;
  init(): Promise<string>;
  addTask(t: Partial<Task> & { ServiceID: string }): Promise<Task>;
}

export function testApi(opts: { validate?: (s: TaskSpec) => string | null } = {}): TestApi {
  const store = memoryStore();
  let nodeId: string | null = null;
  const logs = new Map<string, LogLine[]>();
  const deps: ApiDeps = {
    store,
    nodeId: () => nodeId,
    async initCluster(req) {
      if (store.list('clusters').length) throw new ConflictError('this node is already part of a cluster');
      const id = newId();
      const node: Node = {
        ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
        Spec: { Role: 'manager', Availability: 'active', Labels: {} },
        Description: { Hostname: 'host-a', Platform: { Architecture: 'x86_64', OS: 'linux' }, Resources: { NanoCPUs: 4e9, MemoryBytes: 8e9 }, Engine: { EngineVersion: 'test', Plugins: [] }, Runtimes: [{ Name: 'process', Healthy: true }] },
        Status: { State: 'ready', Addr: '127.0.0.1' },
        ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '127.0.0.1' },
      };
      await store.update((tx) => {
        tx.create('clusters', { ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'default', Orchestration: { TaskHistoryRetentionLimit: 5 }, Raft: { SnapshotInterval: 10000, ElectionTick: 10, HeartbeatTick: 1 }, Dispatcher: { HeartbeatPeriod: 1e9 }, CAConfig: { NodeCertExpiry: 1e9 }, ...req.Spec }, JoinTokens: { Worker: 'w', Manager: 'm' } });
        tx.create('nodes', node);
      });
      nodeId = id;
      return id;
    },
    validateTaskSpec: opts.validate ?? (() => null),
    async *taskLogs(task, o) {
      const lines = (logs.get(task.ID) ?? []).filter((l) => o.since === undefined || l.time >= o.since);
      yield* o.tail === undefined ? lines : lines.slice(Math.max(0, lines.length - o.tail));
    },
    version: { Version: '0.1.0-test', ApiVersion: '1.47', GitCommit: 'abc', Os: 'linux', Arch: 'x86_64' },
  };
  const app = createApp(deps);
  const api: TestApi = {
    app,
    deps,
    logs,
    async call(method, path, body) {
      const init: RequestInit = { method };
      if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
      const res = await app.request(path, init);
      const text = await res.text();
      let json: any;
      try { json = JSON.parse(text); } catch {}
      return { status: res.status, json, text };
    },
    async init() {
      const r = await api.call('POST', '/swarm/init', {});
      if (r.status !== 200) throw new Error(r.text);
      return r.json as string;
    },
    async addTask(t) {
      const task: Task = {
        ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Runtime: 'process' }, Slot: 1, NodeID: nodeId ?? '',
        Status: { Timestamp: new Date().toISOString(), State: 'running', Message: 'started' }, DesiredState: 'running', ...t,
      };
      await store.update((tx) => tx.create('tasks', task));
      return store.get('tasks', task.ID)!;
    },
  };
  return api;
}

export const proc = (name: string, extra: Record<string, unknown> = {}) => ({
  Name: name,
  TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sleep', '60'] } },
  ...extra,
});
