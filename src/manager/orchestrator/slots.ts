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

/** A task made from the service's current template, for one slot. */
export function newTask(service: Service, slot: number, nodeId: string, nowIso: string, restartAttempts = 0): Task {
  return {
    ID: newId(),
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Name: slot > 0 ? `${service.Spec.Name}.${slot}` : `${service.Spec.Name}.${nodeId}`,
    Spec: structuredClone(service.Spec.TaskTemplate),
    ServiceID: service.ID,
    Slot: slot,
    NodeID: nodeId,
    Status: { Timestamp: nowIso, State: 'new', Message: 'created' },
    DesiredState: 'running',
    ServiceVersion: service.Version.Index,
    RestartAttempts: restartAttempts,
  };
}

/** Made from an older spec of the service: a rolling update replaces it. */
export function isOutdated(t: Task, s: Service, specKey: (t: Task) => string = (t) => canonical(t.Spec)): boolean {
  if (t.ServiceVersion === s.Version.Index) return false;
  return specKey(t) !== templateKey(s);
}

/**
 * The service's template, canonical, once per service object (a write replaces the object): asked
 * for every task of the service on every pass, it was a third of a daemon's CPU while 1 000 tasks
 * started once the service's version had moved past its tasks' (issue #18).
 */
const templateKeys = new WeakMap<Service, { version: number; key: string }>();
function templateKey(s: Service): string {
  const hit = templateKeys.get(s);
  if (hit && hit.version === s.Version.Index) return hit.key;
  const key = canonical(s.Spec.TaskTemplate);
  templateKeys.set(s, { version: s.Version.Index, key });
  return key;
}

/**
 * Canonical specs of tasks, remembered by task id (a task's spec never changes), so that a pass
 * over many tasks does not serialise each one again. `sweep()` forgets tasks not asked about since
 * the previous sweep.
 */
export class SpecKeys {
  private keys = new Map<string, string>();
  private seen = new Set<string>();

  readonly of = (t: Task): string => {
    this.seen.add(t.ID);
    let k = this.keys.get(t.ID);
    if (k === undefined) this.keys.set(t.ID, (k = canonical(t.Spec)));
    return k;
  };

  sweep(): void {
    for (const id of this.keys.keys()) if (!this.seen.has(id)) this.keys.delete(id);
    this.seen.clear();
  }
}
