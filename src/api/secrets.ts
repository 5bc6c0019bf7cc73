/**
 * `/secrets` and `/configs` in Docker's shapes (swarm-mode `Secret` and `Config`). A secret's Data
 * is never returned; a config's is. Updates change labels only; removal is refused while a service
 * references the object (409 naming the services).
 */
import { Hono } from 'hono';
import { ConflictError } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { inUseMessage } from '../store/secret-rules.ts';
import { type Config, type FileKind, type Secret, taskFileRefs } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { limitBody, readJson, requireCluster, versionParam } from './middleware.ts';
import { findFileObject, labelsUpdate, normalizeSpec, TABLE_OF } from './secret-spec.ts';

const FILTERS = ['id', 'name', 'names', 'label'] as const;

/** The object as the API shows it: a secret without its Data. */
export function presentFileObject(kind: FileKind, o: Secret | Config): Record<string, unknown> {
  const { Data, ...rest } = o.Spec;
  return { ID: o.ID, Version: o.Version, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Spec: kind === 'secret' ? rest : { ...rest, Data } };
}

function fileObjectRoutes(deps: ApiDeps, kind: FileKind): Hono {
  const { store } = deps;
  const table = TABLE_OF[kind];
  const base = `/${table}`;
  const app = new Hono();

  app.get(base, async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const f = parseFilters(c.req.query('filters'), FILTERS);
    const out = store
      .list(table)
      .filter((o) =>
        matchAny(f.get('id'), (v) => o.ID.startsWith(v)) &&
        matchAny(f.get('name'), (v) => o.Spec.Name.startsWith(v)) &&
        matchAny(f.get('names'), (v) => o.Spec.Name === v) &&
        matchLabels(f.get('label'), o.Spec.Labels),
      )
      .sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))
      .map((o) => presentFileObject(kind, o));
    return c.json(out);
  });

  app.post(`${base}/create`, limitBody, async (c) => {
    requireCluster(store);
    const spec = normalizeSpec(kind, await readJson(c));
    await store.sync(c.req.raw.signal);
    if (store.by(table, 'name', spec.Name).length) throw new ConflictError(`${kind} name "${spec.Name}" is already in use`);
    const id = newId();
    await store.update((tx) => tx.create(table, { ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: spec }), c.req.raw.signal);
    return c.json({ ID: id }, 201);
  });

  app.get(`${base}/:id`, async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(presentFileObject(kind, findFileObject(store, kind, c.req.param('id'))));
  });

  app.post(`${base}/:id/update`, limitBody, async (c) => {
    requireCluster(store);
    const version = versionParam(c);
    const body = await readJson(c);
    await store.sync(c.req.raw.signal);
    const cur = findFileObject(store, kind, c.req.param('id'));
    const next = { ...cur, Version: { Index: version }, Spec: labelsUpdate(kind, cur.Spec, body) };
    await store.update((tx) => tx.update(table, next), c.req.raw.signal);
    return c.body(null, 200);
  });

  app.delete(`${base}/:id`, async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const o = findFileObject(store, kind, c.req.param('id'));
    const users = store.list('services').filter((s) => taskFileRefs(s.Spec.TaskTemplate).some((r) => r.kind === kind && r.id === o.ID));
    if (users.length) throw new ConflictError(inUseMessage(kind, o.Spec.Name, users.map((s) => s.Spec.Name)));
    await store.update((tx) => tx.delete(table, o.ID), c.req.raw.signal);
    return c.body(null, 204);
  });

  return app;
}

export function secretsRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.route('/', fileObjectRoutes(deps, 'secret'));
  app.route('/', fileObjectRoutes(deps, 'config'));
  return app;
}
