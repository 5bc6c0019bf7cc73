/**
 * Fixtures for the manager stages' tests: builders for nodes and services, and a bounded wait.
 * Not imported by production code.
 */
import { newId } from '../lib/ids.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Node, Service, ServiceSpec, Task, TaskState } from '../types/index.ts';

export interface NodeOptions {
  id?: string;
  hostname?: string;
  state?: Node['Status']['State'];
  availability?: Node['Spec']['Availability'];
  role?: Node['Spec']['Role'];
  labels?: Record<string, string>;
  nanoCPUs?: number;
  memoryBytes?: number;
  runtimes?: { Name: string; Healthy: boolean; Message?: string }[];
  os?: string;
  arch?: string;
}

export function makeNode(o: NodeOptions = {}): Node {
  const id = o.id ?? newId();
  return {
    ID: id,
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Role: o.role ?? 'worker', Availability: o.availability ?? 'active', Labels: o.labels ?? {} },
    Description: {
      Hostname: o.hostname ?? `host-${id}`,
      Platform: { OS: o.os ?? 'linux', Architecture: o.arch ?? 'x86_64' },
      Resources: { NanoCPUs: o.nanoCPUs ?? 4e9, MemoryBytes: o.memoryBytes ?? 8 * 2 ** 30 },
      Engine: { EngineVersion: 'test', Plugins: [] },
      Runtimes: o.runtimes ?? [{ Name: 'mock', Healthy: true }, { Name: 'process', Healthy: true }],
    },
    Status: { State: o.state ?? 'ready' },
  };
}

export function makeService(name: string, spec: Partial<ServiceSpec> = {}, id = newId()): Service {
  return {
    ID: id,
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Name: name, TaskTemplate: { Runtime: 'mock' }, Mode: { Replicated: { Replicas: 1 } }, ...spec },
  };
}

/** A bare task in `state`, for tests that seed the store directly. */
export function makeTask(serviceId: string, o: Partial<Task> & { state?: TaskState } = {}): Task {
  const { state, ...rest } = o;
  return {
    ID: newId(),
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Runtime: 'mock' },
    ServiceID: serviceId,
    Slot: 1,
    NodeID: '',
    Status: { Timestamp: new Date(0).toISOString(), State: state ?? 'new', Message: '' },
    DesiredState: 'running',
    ...rest,
  };
}

/**
 * A log that holds every proposal of `store` until released, as a busy raft log would: `held` are
 * the proposals waiting, in order; `release(i)` applies the i-th of them (the next index of the
 * log), `releaseAll()` all of them in order.
 */
export function holdProposals(store: MemoryStore): { held: (() => void)[]; release(i?: number): void; releaseAll(): void } {
  const held: (() => void)[] = [];
  let index = store.index;
  store.proposer = {
    propose: (entry) => new Promise((resolve) => held.push(() => resolve(store.apply(++index, entry)))),
    readBarrier: async () => {},
  };
  return { held, release: (i = 0) => held.splice(i, 1)[0]!(), releaseAll: () => held.splice(0).forEach((go) => go()) };
}

/** Lets queued microtasks and macrotasks run (store proposals, stage passes); no time passes. */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Await `cond` for at most `turns` event-loop turns; throws with `what` when it never holds. */
export async function waitFor(cond: () => boolean, what = 'condition', turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await turn();
  }
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

/** Waits until nothing is in flight: `n` turns in which the store's index stays put. */
export async function settle(store: MemoryStore, quietTurns = 5, maxTurns = 5000): Promise<void> {
  let last = store.index;
  let quiet = 0;
  for (let i = 0; i < maxTurns; i++) {
    await turn();
    if (store.index === last) {
      if (++quiet >= quietTurns) return;
    } else {
      quiet = 0;
      last = store.index;
    }
  }
  throw new Error('store never settled');
}

export function tasksOf(store: MemoryStore, serviceId: string): Task[] {
  return store.by('tasks', 'service', serviceId);
}

/** Tasks of a service that are meant to run (desired state running or less). */
export function liveTasks(store: MemoryStore, serviceId: string): Task[] {
  return tasksOf(store, serviceId).filter((t) => t.DesiredState === 'running' || t.DesiredState === 'ready');
}
