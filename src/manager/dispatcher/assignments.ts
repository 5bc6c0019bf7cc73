/**
 * Which tasks a worker must know about, and what changed since the last frame: the dispatcher sends
 * the set once in full, then only changes (swarmkit's incremental Assignments).
 */
import { encodedSize } from '../../lib/frames.ts';
import type { MemoryStore } from '../../store/index.ts';
import { isTerminal, stateRank, type Task } from '../../types/index.ts';
import { MAX_TASKS_PER_FRAME, type SessionMessages, splitBySize } from './protocol.ts';

type AssignmentsBody = SessionMessages['assignments'];

/**
 * A task belongs to a node's set from `assigned` on (below that, placement is not final), until it
 * is both terminal and meant to be removed: then the worker releases it.
 */
export function isAssignedTo(t: Task, nodeId: string): boolean {
  if (t.NodeID !== nodeId) return false;
  if (stateRank(t.Status.State) < stateRank('assigned')) return false;
  return !(stateRank(t.DesiredState) >= stateRank('remove') && isTerminal(t.Status.State));
}

/**
 * What the worker acts on. A change of observed status alone (most often the worker's own report
 * coming back) is not worth a frame. Kept per spec object (store objects never change in place, and
 * the store shares a spec between a task's versions and its siblings: src/store/share.ts), so that
 * 100 000 tasks of 100 services serialise about 100 specs and hold about 100 keys between them.
 */
const keysBySpec = new WeakMap<object, Map<string, string>>();
function changeKey(t: Task): string {
  let keys = keysBySpec.get(t.Spec);
  if (!keys) keysBySpec.set(t.Spec, (keys = new Map()));
  const head = `${t.DesiredState}|${t.ServiceVersion ?? ''}`;
  let key = keys.get(head);
  if (key === undefined) keys.set(head, (key = JSON.stringify([t.DesiredState, t.ServiceVersion ?? null, t.Spec])));
  return key;
}

/** One session's view of what the worker was told. Dirty ids are bounded by the tasks on the node. */
export class AssignmentTracker {
  readonly #sent = new Map<string, string>();
  readonly #dirty = new Set<string>();

  constructor(readonly nodeId: string, private readonly maxFrameBytes: number) {}

  markDirty(taskId: string): void { this.#dirty.add(taskId); }
  get hasDirty(): boolean { return this.#dirty.size > 0; }
  /** Whether any task marked since the last `changes` passes `test`. */
  someDirty(test: (taskId: string) => boolean): boolean { for (const id of this.#dirty) if (test(id)) return true; return false; }
  get size(): number { return this.#sent.size; }

  /** The whole set, as frames with `full: true` (the last with `last: true`). */
  full(store: MemoryStore): AssignmentsBody[] {
    this.#sent.clear();
    this.#dirty.clear();
    const tasks = store.by('tasks', 'node', this.nodeId).filter((t) => isAssignedTo(t, this.nodeId));
    for (const t of tasks) this.#sent.set(t.ID, changeKey(t));
    const groups = splitBySize(tasks, encodedSize, this.maxFrameBytes, MAX_TASKS_PER_FRAME);
    if (groups.length === 0) return [{ full: true, last: true, tasks: [], removed: [] }];
    return groups.map((g, i) => ({ full: true, last: i === groups.length - 1, tasks: g, removed: [] }));
  }

  /** What changed among the dirty ids since the last frame; empty when nothing worth sending. */
  changes(store: MemoryStore): AssignmentsBody[] {
    const upserts: Task[] = [];
    const removed: string[] = [];
    for (const id of this.#dirty) {
      const t = store.get('tasks', id);
      if (t && isAssignedTo(t, this.nodeId)) {
        const key = changeKey(t);
        if (this.#sent.get(id) !== key) {
          this.#sent.set(id, key);
          upserts.push(t);
        }
      } else if (this.#sent.delete(id)) {
        removed.push(id);
      }
    }
    this.#dirty.clear();
    if (upserts.length === 0 && removed.length === 0) return [];
    // By count only: ServerSession.sendAssignments halves a frame over its bound.
    const out: AssignmentsBody[] = [];
    for (let i = 0; i < upserts.length; i += MAX_TASKS_PER_FRAME) out.push({ full: false, last: true, tasks: upserts.slice(i, i + MAX_TASKS_PER_FRAME), removed: [] });
    // Removed ids are small; they ride in the last frame (a new one if there were no upserts).
    for (const chunk of splitBySize(removed, () => 40, this.maxFrameBytes, MAX_TASKS_PER_FRAME)) {
      const last = out.at(-1);
      if (last && last.removed.length === 0) last.removed = chunk;
      else out.push({ full: false, last: true, tasks: [], removed: chunk });
    }
    return out;
  }
}
