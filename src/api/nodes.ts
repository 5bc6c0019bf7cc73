import { Hono } from 'hono';
import { ConflictError } from '../lib/errors.ts';
import type { Node, NodeSpec } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { findNode } from './lookup.ts';
import { limitBody, readJson, requireCluster, versionParam } from './middleware.ts';
import { nodeSpecSchema, validate } from './schemas.ts';

const NODE_FILTERS = ['id', 'name', 'role', 'membership', 'label', 'node.label'] as const;

export function nodesRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/nodes', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const f = parseFilters(c.req.query('filters'), NODE_FILTERS);
    const out = store
      .list('nodes')
      .filter((n) =>
        matchAny(f.get('id'), (v) => n.ID.startsWith(v)) &&
        matchAny(f.get('name'), (v) => (n.Spec.Name ?? n.Description?.Hostname ?? '').startsWith(v)) &&
        matchAny(f.get('role'), (v) => n.Spec.Role === v) &&
        matchAny(f.get('membership'), (v) => v === 'accepted') &&
        matchLabels(f.get('label'), n.Description?.Engine?.Labels) &&
        matchLabels(f.get('node.label'), n.Spec.Labels),
      )
      .sort((a, b) => (a.Description?.Hostname ?? '').localeCompare(b.Description?.Hostname ?? '') || a.ID.localeCompare(b.ID));
    return c.json(out);
  });

  app.get('/nodes/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(findNode(store, c.req.param('id'), deps.nodeId()));
  });

  // Docker replaces the whole NodeSpec; we take the fields given and keep the others.
  app.post('/nodes/:id/update', limitBody, async (c) => {
    requireCluster(store);
    const version = versionParam(c);
    const patch = validate(nodeSpecSchema, await readJson(c));
    await store.sync(c.req.raw.signal);
    const cur = findNode(store, c.req.param('id'), deps.nodeId());
    const spec: NodeSpec = { ...cur.Spec, ...patch } as NodeSpec;
    if (cur.Spec.Role === 'manager' && spec.Role === 'worker') {
      const managers = store.list('nodes').filter((n) => n.Spec.Role === 'manager');
      if (managers.length <= 1) throw new ConflictError(`node ${cur.ID} is the last manager of the cluster: promote another node before demoting it`);
    }
    const next: Node = { ...cur, Version: { Index: version }, Spec: spec };
    await store.update((tx) => tx.update('nodes', next), c.req.raw.signal);
    return c.body(null, 200);
  });

  return app;
}
