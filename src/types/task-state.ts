/**
 * Task states, as in Swarm. Spaced numeric ranks so that a stale status report can be recognised
 * (and dropped) by a plain comparison: a task's observed state only ever moves forward.
 */
export const TASK_STATES = [
  'new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running',
  'complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

const RANK: Record<TaskState, number> = {
  new: 0, pending: 64, assigned: 192, accepted: 256, preparing: 320, ready: 384, starting: 448,
  running: 512, complete: 576, shutdown: 640, failed: 704, rejected: 768, remove: 800, orphaned: 832,
};

export function stateRank(s: TaskState): number {
  return RANK[s];
}

export function isTaskState(s: unknown): s is TaskState {
  return typeof s === 'string' && s in RANK;
}

/** True when moving from `from` to `to` is a forward step (or a no-op). */
export function canAdvance(from: TaskState, to: TaskState): boolean {
  return RANK[to] >= RANK[from];
}

/** A task past running has stopped doing work: complete, shutdown, failed, rejected, remove, orphaned. */
export function isTerminal(s: TaskState): boolean {
  return RANK[s] > RANK.running;
}

/** The task's work is (or may soon be) using the node: assigned up to running. */
export function isActiveOnNode(s: TaskState): boolean {
  return RANK[s] >= RANK.assigned && RANK[s] <= RANK.running;
}
