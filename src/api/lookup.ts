/**
 * Objects by reference, as the docker CLI allows: a full ID, a name, or a unique ID prefix.
 */
import { InvalidArgumentError, NotFoundError } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Meta, Node, Service, Task } from '../types/index.ts';

function byPrefix<T extends Meta>(all: T[], ref: string, what: string): T | undefined {
  const hits = all.filter((o) => o.ID.startsWith(ref));
  if (hits.length > 1) throw new InvalidArgumentError(`${what} "${ref}" is ambiguous: ${hits.length} IDs start with it`);
  return hits[0];
}

export function findService(store: MemoryStore, ref: string): Service {
  const s = store.get('services', ref) ?? store.by('services', 'name', ref)[0] ?? (ref ? byPrefix(store.list('services'), ref, 'service') : undefined);
  if (!s) throw new NotFoundError(`service ${ref} not found`);
  return s;
}

/** `self` is this host's node, as in the docker CLI. */
export function findNode(store: MemoryStore, ref: string, selfId?: string | null): Node {
  if (ref === 'self' && selfId) ref = selfId;
  const direct = store.get('nodes', ref);
  if (direct) return direct;
  const all = store.list('nodes');
  const named = all.filter((n) => n.Spec.Name === ref || n.Description?.Hostname === ref);
  if (named.length > 1) throw new InvalidArgumentError(`node name "${ref}" is ambiguous: ${named.length} nodes have it; use the ID`);
  const n = named[0] ?? (ref ? byPrefix(all, ref, 'node') : undefined);
  if (!n) throw new NotFoundError(`node ${ref} not found`);
  return n;
}

export function findTask(store: MemoryStore, ref: string): Task {
  const t = store.get('tasks', ref) ?? (ref ? byPrefix(store.list('tasks'), ref, 'task') : undefined);
  if (!t) throw new NotFoundError(`task ${ref} not found`);
  return t;
}

/** `web.1.abcdef123456` (replicated) or `web.<node>.abcdef123456` (global): how people see a task. */
export function taskName(task: Task, serviceName: string | undefined): string {
  const slot = task.Slot || task.NodeID.slice(0, 12) || '?';
  return `${serviceName ?? task.ServiceID.slice(0, 12)}.${slot}.${task.ID.slice(0, 12)}`;
}
