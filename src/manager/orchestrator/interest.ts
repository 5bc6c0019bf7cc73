import type { ObjectEvent } from '../stage.ts';
import type { Task } from '../../types/index.ts';

/**
 * What makes an orchestrator (replicated, global or jobs) look again: any service or node change,
 * a task created or removed, or a task whose state, desired state or node moved. A task's other
 * updates (its status message, a container id) change nothing it decides.
 */
export function orchestratorInterested(ev: ObjectEvent): boolean {
  if (ev.table !== 'tasks') return ev.table === 'services' || ev.table === 'nodes';
  if (ev.kind !== 'update') return true;
  const t = ev.object as Task;
  const old = ev.old as Task;
  return t.Status.State !== old.Status.State || t.DesiredState !== old.DesiredState || t.NodeID !== old.NodeID;
}
