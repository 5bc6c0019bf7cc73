/**
 * Which secrets and configs a worker must hold, and what changed since the last frame (swarmkit's
 * secret/config assignments). A node receives an object only while one of its unfinished tasks
 * references it; once the last such task is terminal the worker is told to forget it. Data is read
 * from the store at send time and travels only on that node's session.
 */
import type { MemoryStore } from '../../store/index.ts';
import { type FileKind, isTerminal, taskFileRefs } from '../../types/index.ts';
import { isAssignedTo } from './assignments.ts';
import { type FilePayload, type FilePayloadKey, MAX_TASKS_PER_FRAME, type SessionMessages, splitBySize } from './protocol.ts';

type SecretsBody = SessionMessages['secrets'];

const TABLE: Record<FileKind, 'secrets' | 'configs'> = { secret: 'secrets', config: 'configs' };

/** The objects the node's unfinished assigned tasks reference, by `kind/id`. */
export function neededFiles(store: MemoryStore, nodeId: string): Map<string, FilePayloadKey> {
  const out = new Map<string, FilePayloadKey>();
  for (const t of store.by('tasks', 'node', nodeId)) {
    if (!isAssignedTo(t, nodeId) || isTerminal(t.Status.State)) continue;
    for (const r of taskFileRefs(t.Spec)) out.set(`${r.kind}/${r.id}`, { kind: r.kind, id: r.id });
  }
  return out;
}

/** One session's view of what the worker holds. Bounded by the objects its tasks reference. */
export class SecretTracker {
  readonly #sent = new Set<string>();

  constructor(readonly nodeId: string, private readonly maxFrameBytes: number) {}

  get size(): number { return this.#sent.size; }

  /**
   * Frames bringing the worker to what its tasks need now: new objects (with their data), and the
   * ones no unfinished task needs any more. Empty when nothing changed. Call it before sending the
   * assignments of the same change, so a task never arrives before its files.
   */
  sync(store: MemoryStore): SecretsBody[] {
    const want = neededFiles(store, this.nodeId);
    const upserts: FilePayload[] = [];
    for (const [key, k] of want) {
      if (this.#sent.has(key)) continue;
      const o = store.get(TABLE[k.kind], k.id);
      // Gone from the store (a service removed, then its secret, while a task still stops): the
      // task already has its files or will fail to prepare, naming the missing object.
      if (!o?.Spec.Data) continue;
      upserts.push({ ...k, name: o.Spec.Name, data: Buffer.from(o.Spec.Data, 'base64') });
      this.#sent.add(key);
    }
    const removed: FilePayloadKey[] = [];
    for (const key of [...this.#sent]) {
      if (want.has(key)) continue;
      this.#sent.delete(key);
      const [kind, id] = key.split('/') as [FileKind, string];
      removed.push({ kind, id });
    }
    if (upserts.length === 0 && removed.length === 0) return [];
    const groups = splitBySize(upserts, (p) => p.data.length + p.name.length + 128, this.maxFrameBytes - removed.length * 80, MAX_TASKS_PER_FRAME);
    const out: SecretsBody[] = groups.map((g) => ({ upserts: g, removed: [] }));
    if (out.length === 0) out.push({ upserts: [], removed: [] });
    out.at(-1)!.removed = removed;
    return out;
  }
}
