/**
 * Fixtures for the dispatcher and worker tests: a store with a node, bare tasks, a raw framed
 * client standing in for a worker, and a bounded wait. Not imported by production code.
 */
import type { Message } from '../../lib/frames.ts';
import { newId } from '../../lib/ids.ts';
import type { MemoryStore } from '../../store/index.ts';
import type { Node, NodeDescription, Task, TaskSpec, TaskState } from '../../types/index.ts';
import { FrameChannel, memoryConnPair } from './conn.ts';
import type { Dispatcher } from './dispatcher.ts';
import { SESSION_FRAMES, type SessionMessages } from './protocol.ts';

export function description(hostname = 'worker-1'): NodeDescription {
  return {
    Hostname: hostname,
    Platform: { OS: 'linux', Architecture: 'x86_64' },
    Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 30 },
    Engine: { EngineVersion: 'test', Plugins: [] },
  };
}

export function makeNode(id = newId()): Node {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Role: 'worker', Availability: 'active' },
    Description: description('unknown'),
    Status: { State: 'unknown' },
  };
}

export function makeTask(nodeId: string, o: { state?: TaskState; desired?: TaskState; spec?: TaskSpec; id?: string } = {}): Task {
  return {
    ID: o.id ?? newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: o.spec ?? { Runtime: 'mock', MockSpec: {} },
    ServiceID: 'svc', Slot: 1, NodeID: nodeId,
    Status: { Timestamp: new Date(0).toISOString(), State: o.state ?? 'assigned', Message: '' },
    DesiredState: o.desired ?? 'running',
  };
}

export async function addNode(store: MemoryStore, id = newId()): Promise<string> {
  await store.update((tx) => tx.create('nodes', makeNode(id)));
  return id;
}

export async function addTasks(store: MemoryStore, tasks: Task[]): Promise<Task[]> {
  await store.update((tx) => { for (const t of tasks) tx.create('tasks', t); });
  return tasks.map((t) => store.get('tasks', t.ID)!);
}

/** Read-modify-write of one task, as another stage would. */
export async function changeTask(store: MemoryStore, id: string, fn: (t: Task) => Task): Promise<void> {
  await store.update((tx) => tx.update('tasks', fn(tx.get('tasks', id)!)));
}

/** Waits, without letting time pass, until `cond` holds; fails after `timeoutMs` of wall clock. */
export async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A worker speaking raw frames, for what the agent would never send. */
export class RawWorker {
  readonly received: Message<SessionMessages>[] = [];
  closedReason: string | null = null;
  readonly channel: FrameChannel<SessionMessages>;

  constructor(dispatcher: Dispatcher) {
    const [mine, theirs] = memoryConnPair({ chunkBytes: 5 });
    this.channel = new FrameChannel(mine, SESSION_FRAMES);
    this.channel.onMessage((m) => this.received.push(m));
    this.channel.onClose((r) => { this.closedReason = r; });
    dispatcher.accept(theirs);
  }

  of<K extends keyof SessionMessages>(t: K): SessionMessages[K][] {
    return this.received.filter((m) => m.t === t).map((m) => m.b as SessionMessages[K]);
  }

  get sessionId(): string { return this.of('session.registered')[0]?.sessionId ?? ''; }

  async register(nodeId: string, accepts?: string[]): Promise<void> {
    this.channel.send({ t: 'session.register', b: { nodeId, description: description(), ...(accepts ? { accepts } : {}) } });
    await waitFor(() => this.sessionId !== '' || this.closedReason !== null, 'registration');
  }
}
