import { Hono } from 'hono';
import { InvalidArgumentError } from '../lib/errors.ts';
import { isTaskState, type Task } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { presentTask } from './docker-compat.ts';
import { findTask } from './lookup.ts';
import { serviceLogs } from './logs.ts';
import { requireCluster } from './middleware.ts';

// `_up-to-date` is what the docker CLI asks for while it follows a service's convergence.
const TASK_FILTERS = ['id', 'name', 'service', 'node', 'desired-state', 'label', 'runtime', '_up-to-date'] as const;

/** JSON with sorted keys: a task's spec against its service's current one, whatever the key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

/** localeCompare's order, without making a collator at each of 100 000 × log n comparisons. */
const collate = new Intl.Collator().compare;

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
    const currentSpec = new Map<string, string>();
    const upToDate = (t: Task): boolean => {
      const svc = store.get('services', t.ServiceID);
      if (!svc) return false;
      if (t.ServiceVersion === svc.Version.Index) return true;
      let key = currentSpec.get(svc.ID);
      if (key === undefined) currentSpec.set(svc.ID, (key = canonical(svc.Spec.TaskTemplate)));
      return canonical(t.Spec) === key;
    };
    const nodeSet = nodeIds && new Set(nodeIds);
    // Through an index where a filter names services or nodes: at 100 000 tasks a scan of all costs ~100 ms.
    const candidates = serviceIds ? [...new Set(serviceIds)].flatMap((id) => store.by('tasks', 'service', id))
      : nodeSet && !nodeSet.has('') ? [...nodeSet].flatMap((id) => store.by('tasks', 'node', id)) // '' is no key of the index
      : store.list('tasks');
    const out = candidates
      .filter((t) =>
        matchAny(f.get('id'), (v) => t.ID.startsWith(v)) &&
        matchAny(f.get('name'), (v) => (t.Name ?? `${svcName(t)}.${t.Slot || t.NodeID}`).startsWith(v)) &&
        (!nodeSet || nodeSet.has(t.NodeID)) &&
        matchAny(f.get('desired-state'), (v) => t.DesiredState === v) &&
        matchAny(f.get('runtime'), (v) => (t.Spec.Runtime ?? '') === v) &&
        // As swarmkit: a task carries its service's labels (`docker stack ps` lists by them).
        matchLabels(f.get('label'), { ...store.get('services', t.ServiceID)?.Spec.Labels, ...t.Labels }) &&
        matchAny(f.get('_up-to-date'), (v) => upToDate(t) === (v === 'true' || v === '1')),
      )
      .sort((a, b) => collate(a.ServiceID, b.ServiceID) || a.Slot - b.Slot || collate(b.CreatedAt, a.CreatedAt))
      .map((t) => presentTask(c, t));
    return c.json(out);
  });

  app.get('/tasks/:id/logs', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const t = findTask(store, c.req.param('id'));
    const svc = store.get('services', t.ServiceID) ?? { ID: t.ServiceID, Spec: { Name: t.ServiceID.slice(0, 12) } };
    return serviceLogs(c, deps, svc, t);
  });

  app.get('/tasks/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(presentTask(c, findTask(store, c.req.param('id'))));
  });

  return app;
}
