/**
 * What one pass does to one job, as a pure function of the job, its tasks, the nodes and the time.
 *
 * A job runs per iteration (`Service.JobStatus.JobIteration`; the API starts a new one on create and
 * on every update). Only tasks of the current iteration count; older ones still meant to run are shut
 * down. Within the iteration a task is never replaced once it completed:
 *  - replicated job: slots 1..TotalCompletions, each to hold one completed task. Slots in progress
 *    (a task on its way, a failed one waiting out its restart delay, one the restart policy gave up
 *    on) are at most MaxConcurrent; new tasks go into the lowest free slots;
 *  - global job: one slot per node that is ready, active and matches the constraints, filled once;
 *  - a failed task is restarted in its slot per the restart policy (after `Delay`, `MaxAttempts`
 *    times); a completed one never is, whatever the condition (`any` acts as `on-failure`). A slot the
 *    policy gave up on stays in progress: the job does not reach TotalCompletions, as in Docker.
 *  - a task on a node that is down, drained or gone is shut down; a replicated slot gets a successor
 *    at once (the scheduler places it elsewhere); a global one waits for its node to come back.
 */
import { isTerminal, type Node, type Service, type Task, type TaskState } from '../../../types/index.ts';
import { nodeSatisfies } from '../../scheduler/constraints.ts';
import { restartPolicy, shouldRestart } from '../restart.ts';
import { meantToRun, newTask, olderFirst, slotKey } from '../slots.ts';
import { jobIteration, replicatedJobOf } from './mode.ts';

/** A slot whose failed task waits out its restart delay. */
export interface PendingRestart {
  slot: number;
  nodeId: string;
  /** Clock ms. */
  notBefore: number;
  /** RestartAttempts of the successor. */
  attempts: number;
}

/** What the stage remembers of a job between passes (lost on a restart: slots then refill at once). */
export interface JobMemory {
  iteration: number;
  pending: Map<string, PendingRestart>;
  /** Restart times (clock ms) per slot, for a windowed MaxAttempts. */
  restarts: Map<string, number[]>;
}

export function newJobMemory(iteration = -1): JobMemory {
  return { iteration, pending: new Map(), restarts: new Map() };
}

export interface JobPlan {
  updates: Map<string, Task>;
  creates: Task[];
  pending: Map<string, PendingRestart>;
  /** Slots restarted by this pass (for the windowed MaxAttempts). */
  restarted: string[];
}

export interface JobPlanInput {
  service: Service;
  /** Every task of the service. */
  tasks: readonly Task[];
  nodes: ReadonlyMap<string, Node>;
  memory: JobMemory;
  nowMs: number;
  nowIso: string;
}

export function planJob(input: JobPlanInput): JobPlan {
  const { service, nodes, nowMs } = input;
  const iteration = jobIteration(service);
  const fresh = input.memory.iteration !== iteration;
  const mem: JobMemory = fresh ? newJobMemory(iteration) : input.memory;
  const plan: JobPlan = { updates: new Map(), creates: [], pending: new Map(mem.pending), restarted: [] };
  const desire = (t: Task, state: TaskState, extra: Partial<Task> = {}) => {
    const cur = plan.updates.get(t.ID) ?? t;
    if (cur.DesiredState !== state || Object.keys(extra).length) plan.updates.set(t.ID, { ...cur, DesiredState: state, ...extra });
  };
  const global = !service.Spec.Mode?.ReplicatedJob;
  const constraints = service.Spec.TaskTemplate.Placement?.Constraints;
  const usable = (id: string) => {
    const n = nodes.get(id);
    if (!n || n.Status?.State === 'down' || n.Spec?.Availability === 'drain') return false;
    return !global || nodeSatisfies(constraints, n);
  };
  const takes = (id: string) => {
    const n = nodes.get(id);
    return !!n && n.Status?.State === 'ready' && n.Spec?.Availability === 'active' && nodeSatisfies(constraints, n);
  };
  const create = (slot: number, nodeId: string, attempts = 0) => {
    plan.creates.push({ ...newTask(service, slot, nodeId, input.nowIso, attempts), JobIteration: { Index: iteration } });
  };

  const slots = new Map<string, Task[]>();
  for (const t of input.tasks) {
    if ((t.JobIteration?.Index ?? -1) !== iteration || global !== (t.Slot === 0)) {
      // A previous run's task (or one that does not fit the mode): it has no part in this run.
      if (meantToRun(t)) desire(t, 'shutdown');
      continue;
    }
    const k = slotKey(t);
    slots.get(k)?.push(t) ?? slots.set(k, [t]);
  }

  let completed = 0;
  /** Slots taken by this run and not completed: the ones that count against MaxConcurrent. */
  const inProgress = new Set<string>();
  for (const [k, tasks] of slots) {
    tasks.sort(olderFirst);
    const done = tasks.find((t) => t.Status.State === 'complete');
    if (done) {
      completed++;
      plan.pending.delete(k);
      // Docker shows a finished job task as desired `complete`; anything else in the slot stops.
      for (const t of tasks) if (meantToRun(t)) desire(t, t === done ? 'complete' : 'shutdown');
      continue;
    }
    const live = tasks.filter(meantToRun);
    const cur = live.pop();
    for (const extra of live) desire(extra, 'shutdown');
    const newest = tasks[tasks.length - 1]!;
    if (!cur) {
      if (newest.SlotDone) inProgress.add(k);
      else if (plan.pending.has(k)) inProgress.add(k);
      // Stopped by an earlier pass whose memory is gone (a new leader): its successor is due now.
      else if (!global || takes(newest.NodeID)) {
        const failed = newest.Status.State === 'failed' || newest.Status.State === 'rejected';
        plan.pending.set(k, { slot: newest.Slot, nodeId: global ? newest.NodeID : '', notBefore: nowMs, attempts: (newest.RestartAttempts ?? 0) + (failed ? 1 : 0) });
        inProgress.add(k);
      }
      continue;
    }
    plan.pending.delete(k);
    if (!isTerminal(cur.Status.State)) {
      if (cur.NodeID && !usable(cur.NodeID)) {
        desire(cur, 'shutdown');
        if (!global) {
          create(cur.Slot, '', cur.RestartAttempts ?? 0);
          inProgress.add(k);
        }
        continue;
      }
      inProgress.add(k);
      continue;
    }
    // Ended without completing while meant to run: the restart policy decides.
    inProgress.add(k);
    const policy = restartPolicy(cur.Spec);
    if (!shouldRestart(cur, policy, mem.restarts.get(k) ?? [], nowMs)) {
      desire(cur, 'shutdown', { SlotDone: true });
      continue;
    }
    desire(cur, 'shutdown');
    plan.restarted.push(k);
    plan.pending.set(k, { slot: cur.Slot, nodeId: global ? cur.NodeID : '', notBefore: nowMs + policy.delayMs, attempts: (cur.RestartAttempts ?? 0) + 1 });
  }

  // Restarts whose delay is over.
  for (const [k, p] of [...plan.pending]) {
    if (!slots.has(k)) {
      plan.pending.delete(k); // its tasks are gone (deleted): the slot is free again
      continue;
    }
    if (p.notBefore > nowMs) continue;
    if (global && !takes(p.nodeId)) continue; // its node cannot take it now: wait for the node
    plan.pending.delete(k);
    create(p.slot, p.nodeId, p.attempts);
  }

  if (global) {
    for (const id of [...nodes.keys()].sort()) {
      if (!slots.has(slotKey({ Slot: 0, NodeID: id })) && takes(id)) create(0, id);
    }
  } else {
    const { maxConcurrent, totalCompletions } = replicatedJobOf(service.Spec.Mode);
    let room = Math.min(maxConcurrent - inProgress.size, totalCompletions - completed - inProgress.size);
    for (let slot = 1; room > 0 && slot <= totalCompletions; slot++) {
      if (slots.has(String(slot))) continue;
      create(slot, '');
      room--;
    }
  }
  return plan;
}
