/**
 * Task updates written as what changed (issue #18). A task is written three times on its way to
 * running (created, assigned, running), and each `update` carried the whole task, spec and all:
 * every manager encoded or decoded ~700 bytes to learn that `Status` changed. A `patch` action names
 * the task, the version the writer read and the top-level members that differ from it.
 *
 * An older build cannot apply a patch, so the store writes them only while every manager says it
 * can: each node lists what its build can do in `Description.Features` (src/daemon/describe.ts), and
 * a manager whose description is not known yet counts as one that cannot.
 */
import type { Meta, Node, Task } from '../types/index.ts';
import type { Action } from './actions.ts';

/** The feature a node's description lists when its store applies `patch` actions. */
export const TASK_PATCH_FEATURE = 'task-patch';

/** Members the store sets itself when it applies a write: never worth carrying in a patch. */
const STAMPED = new Set(['Version', 'CreatedAt', 'UpdatedAt']);

/**
 * `next` as a patch of `base` (the committed version the writer read): the top-level members whose
 * value is not the very same one (store objects are never changed in place, so an untouched member
 * is the same reference) and those `next` dropped.
 */
export function taskPatch(base: Task, next: Task): Extract<Action, { op: 'patch' }> {
  const set: Record<string, unknown> = {};
  const b = base as unknown as Record<string, unknown>;
  const n = next as unknown as Record<string, unknown>;
  for (const k in n) if (!STAMPED.has(k) && n[k] !== b[k]) set[k] = n[k];
  const unset: string[] = [];
  for (const k in b) if (!STAMPED.has(k) && !(k in n)) unset.push(k);
  return { op: 'patch', table: 'tasks', id: next.ID, version: next.Version.Index, set, ...(unset.length ? { unset } : {}) };
}

/** `base` with a patch's members set and unset: a new object (the store's are never changed in place). */
export function patched(base: Meta, set: Record<string, unknown>, unset: readonly string[] | undefined): Meta {
  const out = { ...base, ...set } as Record<string, unknown>;
  if (unset) for (const k of unset) delete out[k];
  return out as unknown as Meta;
}

/** Whether every manager among `nodes` applies patches (false with no manager known). */
export function managersApplyPatches(nodes: Iterable<Node>): boolean {
  let managers = 0;
  for (const n of nodes) {
    if (n.Spec.Role !== 'manager' && !n.ManagerStatus) continue;
    managers++;
    if (!n.Description?.Features?.includes(TASK_PATCH_FEATURE)) return false;
  }
  return managers > 0;
}
