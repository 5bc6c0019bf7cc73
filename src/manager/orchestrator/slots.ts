/**
 * Slots: the unit the orchestrator keeps filled. A replicated service has `Replicas` numbered slots;
 * a global service has one slot per node (Slot 0, keyed by node id). A slot's current task is its
 * newest task meant to run (DesiredState ≤ running); older ones are its history.
 */
import { newId } from '../../lib/ids.ts';
import { stateRank, type Service, type Task } from '../../types/index.ts';
import { canonical } from '../stage.ts';

const RUNNING = stateRank('running');

export function isGlobal(s: Service): boolean {
  return !!s.Spec.Mode?.Global;
}

export function replicasOf(s: Service): number {
  const n = s.Spec.Mode?.Replicated?.Replicas;
  return typeof n === 'number' && n >= 0 ? Math.floor(n) : 1;
}

/** The slot a task belongs to: its number, or for a global service its node. */
export function slotKey(t: Pick<Task, 'Slot' | 'NodeID'>): string {
  return t.Slot > 0 ? String(t.Slot) : `node:${t.NodeID}`;
}

export function meantToRun(t: Task): boolean {
  return stateRank(t.DesiredState) <= RUNNING;
}

export function olderFirst(a: Task, b: Task): number {
  if (a.CreatedAt !== b.CreatedAt) return a.CreatedAt < b.CreatedAt ? -1 : 1;
  if ((a.RestartAttempts ?? 0) !== (b.RestartAttempts ?? 0)) return (a.RestartAttempts ?? 0) - (b.RestartAttempts ?? 0);
  return a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0;
}

/**
 * Whether the allocator has something to give this service's tasks: an address on a network, or the
 * published ports it checks before letting them go (allocator.ts). Any other task is created
 * `pending`, as the allocator would leave it, which saves one write of every task (issue #18).
 */
export function needsAllocation(service: Service): boolean {
  return !!service.Spec.TaskTemplate.Networks?.length || !!service.Spec.EndpointSpec?.Ports?.length;
}

/** A task made from the service's current template, for one slot: `new`, or `pending` when it needs no allocation. */
export function newTask(service: Service, slot: number, nodeId: string, nowIso: string, restartAttempts = 0): Task {
  return {
    ID: newId(),
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Name: slot > 0 ? `${service.Spec.Name}.${slot}` : `${service.Spec.Name}.${nodeId}`,
    // The template itself, not a copy: store objects never change in place, and the store keeps its
    // own decoded copy of what is written (a copy per task was ~2 % of the manager's CPU at 10k tasks).
    Spec: service.Spec.TaskTemplate,
    ServiceID: service.ID,
    Slot: slot,
    NodeID: nodeId,
    Status: needsAllocation(service) ? { Timestamp: nowIso, State: 'new', Message: 'created' } : { Timestamp: nowIso, State: 'pending', Message: 'pending task scheduling' },
    DesiredState: 'running',
    ServiceVersion: service.Version.Index,
    RestartAttempts: restartAttempts,
  };
}

/** Made from an older spec of the service: a rolling update replaces it. */
export function isOutdated(t: Task, s: Service, specKey: (t: Task) => string = (t) => canonical(t.Spec), templateKey: (s: Service) => string = (s) => canonical(s.Spec.TaskTemplate)): boolean {
  if (t.ServiceVersion === s.Version.Index) return false;
  return specKey(t) !== templateKey(s);
}

/**
 * Canonical specs, remembered by the spec object: store objects are never changed in place, and the
 * store hands the tasks of one template the same spec object (src/store/share.ts), so a pass over a
 * service's thousand tasks serialises its spec once, and the memory goes with the objects. Templates
 * of services are remembered for one pass (until `sweep()`).
 */
export class SpecKeys {
  private keys = new WeakMap<object, string>();
  private templates = new Map<Service, string>();

  readonly of = (t: Task): string => {
    let k = this.keys.get(t.Spec);
    if (k === undefined) this.keys.set(t.Spec, (k = canonical(t.Spec)));
    return k;
  };

  readonly template = (s: Service): string => {
    let k = this.templates.get(s);
    if (k === undefined) this.templates.set(s, (k = canonical(s.Spec.TaskTemplate)));
    return k;
  };

  sweep(): void {
    this.templates.clear();
  }
}
