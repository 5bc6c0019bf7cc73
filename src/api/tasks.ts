import { Hono } from 'hono';
import { InvalidArgumentError } from '../lib/errors.ts';
import { isTaskState, type Task } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { findTask } from './lookup.ts';
import { requireCluster } from './middleware.ts';

const TASK_FILTERS = ['id', 'name', 'service', 'node', 'desired-state', 'label', 'runtime'] as const;

export function tasksRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/tasks', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const f = parseFilters(c.req.query('filters'), TASK_FILTERS);
    for (const s of f.get('desired-state') ?? []) {
      if (!isTaskState(s)) throw new InvalidArgumentError(`filters: invalid desired-state "${s}" (e.g. running, shutdown, accepted)`);
    }
    // A service filter matches IDs, names and ID prefixes, and also the ID of a service already removed.
    const serviceIds = f.get('service')?.map((ref) => {
      const named = store.by('services', 'name', ref)[0];
      return named ? [named.ID] : [ref, ...store.list('services').filter((s) => s.ID.startsWith(ref)).map((s) => s.ID)];
    }).flat();
    const nodeIds = f.get('node')?.flatMap((ref) => [
      ref,
      ...store.list('nodes').filter((n) => n.ID.startsWith(ref) || n.Spec.Name === ref || n.Description?.Hostname === ref).map((n) => n.ID),
    ]);
    const svcName = (t: Task) => store.get('services', t.ServiceID)?.Spec.Name;
    const candidates = serviceIds ? [...new Set(serviceIds)].flatMap((id) => store.by('tasks', 'service', id)) : store.list('tasks');
    const out = candidates
      .filter((t) =>
        matchAny(f.get('id'), (v) => t.ID.startsWith(v)) &&
        matchAny(f.get('name'), (v) => (t.Name ?? `${svcName(t)}.${t.Slot || t.NodeID}`).startsWith(v)) &&
        (!nodeIds || nodeIds.includes(t.NodeID)) &&
        matchAny(f.get('desired-state'), (v) => t.DesiredState === v) &&
        matchAny(f.get('runtime'), (v) => (t.Spec.Runtime ?? '') === v) &&
        matchLabels(f.get('label'), t.Labels),
      )
      .sort((a, b) => a.ServiceID.localeCompare(b.ServiceID) || a.Slot - b.Slot || b.CreatedAt.localeCompare(a.CreatedAt));
    return c.json(out);
  });

  app.get('/tasks/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(findTask(store, c.req.param('id')));
  });

  return app;
}
