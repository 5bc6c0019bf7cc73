/**
 * Docker's events (API 1.47 `events.Message`) derived from the store's applied changes. Pure: the
 * same committed batch gives the same events on every manager, so each one can serve the whole
 * cluster's events from its own replica of the log.
 */
import type { ChangeEvent } from '../store/index.ts';
import type { Labels, Meta, Node, Service, Task } from '../types/index.ts';

export type EventType = 'service' | 'node' | 'task' | 'network' | 'secret' | 'config';
export const EVENT_TYPES: readonly EventType[] = ['service', 'node', 'task', 'network', 'secret', 'config'];

/** Docker's shape, plus what filters need and the wire does not show. */
export interface SwarmEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'swarm';
  time: number;
  /** Nanoseconds since the epoch: a bigint, because a Number cannot hold one exactly. */
  timeNano: bigint;
  /** The object's Spec.Labels (the `label` filter); not sent. */
  labels?: Labels;
}

/** Tables whose changes are events, by the Docker type they are. Secrets and configs when the store has them. */
const TYPE_OF: Record<string, EventType> = { services: 'service', nodes: 'node', tasks: 'task', networks: 'network', secrets: 'secret', configs: 'config' };

export type ObjectChange = Exclude<ChangeEvent, { kind: 'commit' }>;

const ACTION: Record<ObjectChange['kind'], string> = { create: 'create', update: 'update', delete: 'remove' };

/** `at` (the batch's ISO time, from its proposer) → nanoseconds since the epoch. */
export function nanosOf(at: string): bigint {
  const ms = Date.parse(at);
  return BigInt(Number.isNaN(ms) ? 0 : ms) * 1_000_000n;
}

/** One JSON line, Docker's field order, `timeNano` exact. */
export function eventLine(e: SwarmEvent): string {
  const body = JSON.stringify({ Type: e.Type, Action: e.Action, Actor: e.Actor, scope: e.scope, time: e.time });
  return `${body.slice(0, -1)},"timeNano":${e.timeNano}}\n`;
}

function specName(o: Meta): string | undefined {
  const spec = (o as { Spec?: { Name?: unknown } }).Spec;
  return typeof spec?.Name === 'string' ? spec.Name : undefined;
}

function specLabels(o: Meta): Labels | undefined {
  return (o as { Spec?: { Labels?: Labels } }).Spec?.Labels;
}

function replicas(s: Service): number | undefined {
  return s.Spec.Mode?.Replicated?.Replicas;
}

/** `key.old` / `key.new` when the value changed. */
function changed(attrs: Record<string, string>, key: string, before: unknown, after: unknown): void {
  if (before === after) return;
  attrs[`${key}.old`] = before === undefined ? '' : String(before);
  attrs[`${key}.new`] = after === undefined ? '' : String(after);
}

/** When a batch's events happened: its proposer's clock reading, in seconds and exactly in nanoseconds. */
export interface BatchTime {
  time: number;
  timeNano: bigint;
}

export function batchTime(at: string): BatchTime {
  const timeNano = nanosOf(at);
  return { time: Number(timeNano / 1_000_000_000n), timeNano };
}

/**
 * Whether deriveEvent makes an event of this change: one of the tables that have events, and for a
 * task's update only a move of its state. Cheap: nothing is built.
 */
export function isEvent(c: ObjectChange): boolean {
  if (!TYPE_OF[c.table]) return false;
  return c.table !== 'tasks' || c.kind !== 'update' || (c.old as Task).Status.State !== (c.object as Task).Status.State;
}

/** The event of one change (null when it is none: see isEvent). `serviceName` names a task's service. */
export function deriveEvent(c: ObjectChange, bt: BatchTime, serviceName: (id: string) => string | undefined): SwarmEvent | null {
  if (!isEvent(c)) return null;
  const type = TYPE_OF[c.table]!;
  const ev = type === 'task' ? taskEvent(c, serviceName) : objectEvent(type, c);
  return { ...ev, scope: 'swarm', time: bt.time, timeNano: bt.timeNano };
}

/** How the events of one batch name a task's service: the batch's own services first (a service removed with its tasks still names them). */
export function serviceNames(changes: readonly ObjectChange[], serviceName: (id: string) => string | undefined): (id: string) => string | undefined {
  let inBatch: Map<string, string> | undefined;
  for (const c of changes) if (c.table === 'services') (inBatch ??= new Map()).set(c.object.ID, (c.object as Service).Spec.Name);
  return inBatch ? (id) => inBatch.get(id) ?? serviceName(id) : serviceName;
}

/**
 * The events of one applied batch. `serviceName` names a task's service (the batch's own services
 * are looked up first, so a service removed with its tasks still names them).
 */
export function deriveEvents(changes: ObjectChange[], at: string, serviceName: (id: string) => string | undefined): SwarmEvent[] {
  const bt = batchTime(at);
  const nameOfService = serviceNames(changes, serviceName);
  const out: SwarmEvent[] = [];
  for (const c of changes) {
    const ev = deriveEvent(c, bt, nameOfService);
    if (ev) out.push(ev);
  }
  return out;
}

type EventCore = Omit<SwarmEvent, 'scope' | 'time' | 'timeNano'>;

function objectEvent(type: EventType, c: ObjectChange): EventCore {
  const o = c.object;
  const attrs: Record<string, string> = {};
  if (type === 'node') {
    const n = o as Node;
    attrs.name = n.Description?.Hostname || n.Spec.Name || n.ID;
    if (c.kind === 'update') {
      const old = c.old as Node;
      changed(attrs, 'state', old.Status?.State, n.Status?.State);
      changed(attrs, 'availability', old.Spec.Availability, n.Spec.Availability);
      changed(attrs, 'role', old.Spec.Role, n.Spec.Role);
    }
  } else {
    const name = specName(o);
    if (name !== undefined) attrs.name = name;
    if (type === 'service' && c.kind === 'update') {
      const s = o as Service;
      const old = c.old as Service;
      changed(attrs, 'updatestate', old.UpdateStatus?.State, s.UpdateStatus?.State);
      changed(attrs, 'replicas', replicas(old), replicas(s));
    }
  }
  return { Type: type, Action: ACTION[c.kind], Actor: { ID: o.ID, Attributes: attrs }, labels: specLabels(o) };
}

/**
 * Docker emits no task events; shoal's say where a task's state went: Action is the new state
 * (`running`, `failed`…) when it is created or its state moves, `remove` when the reaper deletes it.
 * Other task writes (desired state, addresses) are not events (isEvent leaves them out).
 */
function taskEvent(c: ObjectChange, serviceName: (id: string) => string | undefined): EventCore {
  const t = c.object as Task;
  const svc = serviceName(t.ServiceID);
  const attrs: Record<string, string> = { name: `${svc ?? t.ServiceID.slice(0, 12)}.${t.Slot || t.NodeID.slice(0, 12) || '?'}`, service: svc ?? '', 'service.id': t.ServiceID, node: t.NodeID ?? '' };
  let action: string;
  if (c.kind === 'delete') action = 'remove';
  else if (c.kind === 'create') {
    action = t.Status.State;
    attrs['state.new'] = t.Status.State;
  } else {
    const old = (c.old as Task).Status.State; // a move of state: isEvent let it through
    action = t.Status.State;
    changed(attrs, 'state', old, t.Status.State);
  }
  if (t.Status.Message && c.kind !== 'delete') attrs.message = t.Status.Message;
  return { Type: 'task', Action: action, Actor: { ID: t.ID, Attributes: attrs }, labels: t.Labels };
}
