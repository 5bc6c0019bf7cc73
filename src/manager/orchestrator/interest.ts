import type { ObjectEvent } from '../stage.ts';
import { isTerminal, stateRank, type Task, type TaskState } from '../../types/index.ts';

const ASSIGNED = stateRank('assigned');
const RUNNING = stateRank('running');

/**
 * What an orchestrator tells apart in a task's state: not yet on a node (new, pending), on its
 * way to run (assigned … starting), running, and each state past running by name. Every decision
 * of the orchestrators (slots, restarts, rolling updates and their monitor, jobs) reads the state
 * only through these boundaries, so a step within one class (accepted → preparing → ready →
 * starting) decides nothing new.
 */
function stateClass(s: TaskState): string {
  const r = stateRank(s);
  if (r < ASSIGNED) return 'unplaced';
  if (r < RUNNING) return 'placed';
  return s;
}

/**
 * What makes an orchestrator (replicated, global or jobs) look again: any service or node change,
 * a task created or removed, or a task whose state class (above), desired state or node moved. A
 * task's other updates (its status message, a container id, a step within its class) change
 * nothing it decides.
 *
 * `rolling` narrows it further for the replicated and global orchestrator: only a rolling update
 * (or rollback) under way or paused watches its tasks get placed and run (its Parallelism, its
 * Monitor, a start-first predecessor waiting for its successor, which a pause leaves waiting).
 * Outside one, only a task's end matters, so a
 * task reaching `assigned` or `running` plans nothing. With 1,000 replicas starting, each of
 * those steps would otherwise plan the whole service again (issue #18).
 */
export function orchestratorInterested(ev: ObjectEvent, rolling?: (serviceId: string) => boolean): boolean {
  if (ev.table !== 'tasks') return ev.table === 'services' || ev.table === 'nodes';
  if (ev.kind !== 'update') return true;
  const t = ev.object as Task;
  const old = ev.old as Task;
  if (t.DesiredState !== old.DesiredState || t.NodeID !== old.NodeID) return true;
  const from = stateClass(old.Status.State), to = stateClass(t.Status.State);
  if (from === to) return false;
  if (!rolling || isTerminal(t.Status.State) || isTerminal(old.Status.State)) return true;
  return rolling(t.ServiceID);
}
