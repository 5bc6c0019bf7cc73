import { Hono } from 'hono';
import { InvalidArgumentError } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Service } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { adaptServiceBody, presentService } from './docker-compat.ts';
import { serviceLogs } from './logs.ts';
import { findService } from './lookup.ts';
import { boolParam, limitBody, readJson, requireCluster, versionParam } from './middleware.ts';
import { checkPortConflict } from '../manager/allocator/ports.ts';
import { attachIngress, resolveServiceNetworks } from './network-spec.ts';
import { normalizeServiceSpec } from './service-spec.ts';
import { checkModeChange, jobServiceStatus, modeName, nextJobStatus } from './job-spec.ts';
import { isJob } from '../manager/orchestrator/jobs/mode.ts';
import { resolveFileRefs } from './secret-refs.ts';

const SERVICE_FILTERS = ['id', 'name', 'label', 'mode', 'runtime'] as const;

/** Docker's `ServiceStatus` (`GET /services?status=true`): what `service ls` shows as 2/3. */
export function serviceStatus(store: MemoryStore, svc: Service): { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } {
  if (isJob(svc)) return jobServiceStatus(svc, store.by('tasks', 'service', svc.ID));
  // From the store's counts: reading each task of 100 000 took ~50 ms per `service ls`.
  let wanted = 0;
  let running = 0;
  let completed = 0;
  for (const [key, n] of store.countTasks(svc.ID)) {
    const [desired, state] = key.split('|');
    if (desired === 'running') {
      wanted += n;
      if (state === 'running') running += n;
    }
    if (state === 'complete') completed += n;
  }
  const desired = svc.Spec.Mode?.Global ? wanted : (svc.Spec.Mode?.Replicated?.Replicas ?? 1);
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}

export function servicesRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/services', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const f = parseFilters(c.req.query('filters'), SERVICE_FILTERS);
    const withStatus = boolParam(c, 'status') ?? false;
    const out = store
      .list('services')
      .filter((s) =>
        matchAny(f.get('id'), (v) => s.ID.startsWith(v)) &&
        matchAny(f.get('name'), (v) => s.Spec.Name.startsWith(v)) &&
        matchAny(f.get('mode'), (v) => v === modeName(s.Spec.Mode)) &&
        matchAny(f.get('runtime'), (v) => s.Spec.TaskTemplate.Runtime === v) &&
        matchLabels(f.get('label'), s.Spec.Labels),
      )
      .sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))
      .map((s) => presentService(c, withStatus ? { ...s, ServiceStatus: serviceStatus(store, s) } : s));
    return c.json(out);
  });

  app.post('/services/create', limitBody, async (c) => {
    requireCluster(store);
    // On its way from now: the orchestrator's next pass waits for it (bounded) rather than plan
    // the services created together with it in a pass of their own (Orchestrator.gather).
    const settled = store.announce('services', 'create');
    try {
      const body = adaptServiceBody(c, await readJson(c));
      const id = newId();
      const spec = normalizeServiceSpec(body, deps, () => `service-${id.slice(0, 8)}`);
      await store.sync(c.req.raw.signal);
      checkPortConflict(store, spec);
      await attachIngress(store, spec, c.req.raw.signal);
      resolveServiceNetworks(store, spec);
      resolveFileRefs(store, spec);
      const svc: Service = { ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: spec, Endpoint: { Spec: spec.EndpointSpec ?? { Mode: 'vip' } } };
      const job = nextJobStatus(spec, undefined, new Date().toISOString());
      if (job) svc.JobStatus = job;
      await store.update((tx) => tx.create('services', svc), c.req.raw.signal);
      return c.json({ ID: id, Warnings: [] as string[] }, 201);
    } finally {
      settled();
    }
  });

  app.get('/services/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(presentService(c, findService(store, c.req.param('id'))));
  });

  app.post('/services/:id/update', limitBody, async (c) => {
    requireCluster(store);
    const version = versionParam(c);
    const rollback = c.req.query('rollback');
    if (rollback !== undefined && rollback !== 'previous' && rollback !== '') {
      throw new InvalidArgumentError(`rollback: expected "previous", got ${JSON.stringify(rollback)}`);
    }
    const raw = rollback === 'previous' ? undefined : await readJson(c);
    await store.sync(c.req.raw.signal);
    const cur = findService(store, c.req.param('id'));
    if (rollback === 'previous') {
      // Docker's server-side rollback: the body is ignored; the supervisor rolls the previous spec
      // out under RollbackConfig.
      const prev = cur.PreviousSpec;
      if (!prev) throw new InvalidArgumentError(`rollback: service "${cur.Spec.Name}" has no previous spec to roll back to (it was never updated)`);
      const next: Service = {
        ...cur, Version: { Index: version }, PreviousSpec: cur.Spec, Spec: prev,
        UpdateStatus: { State: 'rollback_started', StartedAt: new Date().toISOString(), Message: 'manually requested rollback' },
        Endpoint: { ...cur.Endpoint, Spec: prev.EndpointSpec ?? { Mode: 'vip' } },
      };
      await store.update((tx) => tx.update('services', next), c.req.raw.signal);
      return c.json({ Warnings: [] as string[] });
    }
    const body = adaptServiceBody(c, raw, cur);
    const spec = normalizeServiceSpec(body, deps, () => cur.Spec.Name);
    checkPortConflict(store, spec, cur.ID);
    await attachIngress(store, spec, c.req.raw.signal);
    resolveServiceNetworks(store, spec);
    resolveFileRefs(store, spec);
    if (spec.Name !== cur.Spec.Name) throw new InvalidArgumentError(`Name: renaming a service is not supported ("${cur.Spec.Name}" → "${spec.Name}")`);
    checkModeChange(cur.Spec, spec);
    // A new update, as swarmkit: the update status starts afresh (which resumes a paused one).
    const { UpdateStatus: _done, ...rest } = cur;
    const next: Service = { ...rest, Version: { Index: version }, PreviousSpec: cur.Spec, Spec: spec, Endpoint: { ...cur.Endpoint, Spec: spec.EndpointSpec ?? { Mode: 'vip' } } };
    const job = nextJobStatus(spec, cur, new Date().toISOString());
    if (job) next.JobStatus = job;
    await store.update((tx) => tx.update('services', next), c.req.raw.signal);
    return c.json({ Warnings: [] as string[] });
  });

  app.delete('/services/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const svc = findService(store, c.req.param('id'));
    await store.update((tx) => tx.delete('services', svc.ID), c.req.raw.signal);
    return c.body(null, 200);
  });

  app.get('/services/:id/logs', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const svc = findService(store, c.req.param('id'));
    return serviceLogs(c, deps, svc);
  });

  return app;
}
