import { Hono } from 'hono';
import { ConflictError, UnavailableError } from '../lib/errors.ts';
import type { Node, NodeSpec } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { MAX_REMOVED_NODES } from './limits.ts';
import { findNode } from './lookup.ts';
import { boolParam, limitBody, readJson, requireCluster, versionParam } from './middleware.ts';
import { nodeSpecSchema, validate } from './schemas.ts';

const NODE_FILTERS = ['id', 'name', 'role', 'membership', 'label', 'node.label'] as const;

/**
 * Nodes recorded by an earlier version hold the issuer's subject as text; the docker CLI reads the
 * field as base64 and fails on the whole list, so such a value is left out until the next renewal.
 */
export function dockerNode(node: Node): Node {
  // The store keeps a demoted node's last ManagerStatus (its address); Docker shows one only for a
  // manager, and `docker node ls` would call the worker "Reachable".
  let n = node;
  if (n.Spec.Role === 'worker' && n.ManagerStatus) {
    const { ManagerStatus: _kept, ...rest } = n;
    n = rest;
  }
  const tls = n.Description?.TLSInfo;
  if (!tls?.CertIssuerSubject || /^[A-Za-z0-9+/]*={0,2}$/.test(tls.CertIssuerSubject)) return n;
  const { CertIssuerSubject: _text, ...rest } = tls;
  return { ...n, Description: { ...n.Description, TLSInfo: rest } };
}

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
    return c.json(out.map(dockerNode));
  });

  app.get('/nodes/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(dockerNode(findNode(store, c.req.param('id'), deps.nodeId())));
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
    let managerStatus = cur.ManagerStatus;
    if (cur.Spec.Role === 'worker' && spec.Role === 'manager') {
      // The leader adds it to raft at this address; the node learns it was promoted from its heartbeat acks.
      if (!cur.AdvertiseAddr) throw new UnavailableError(`node ${cur.ID} did not say where it listens when it joined: have it leave ("shoal cluster leave") and join again with the manager token`);
      managerStatus = { Leader: false, Reachability: 'unknown', Addr: cur.AdvertiseAddr };
    }
    const next: Node = { ...cur, Version: { Index: version }, Spec: spec, ...(managerStatus ? { ManagerStatus: managerStatus } : {}) };
    await store.update((tx) => {
      tx.update('nodes', next);
      // A role changed by hand in the automatic mode: the user takes over the manager count
      // (src/daemon/manager-count.ts), which would otherwise undo it.
      const id = store.list('clusters')[0]?.ID;
      const cluster = id ? tx.get('clusters', id) : undefined;
      if (cluster && spec.Role !== cur.Spec.Role && (cluster.Spec.Managers?.Desired ?? 0) === 0) {
        tx.update('clusters', { ...cluster, Spec: { ...cluster.Spec, Managers: { ...cluster.Spec.Managers, Desired: -1 } } });
      }
    }, c.req.raw.signal);
    return c.body(null, 200);
  });

  // Docker's node rm: a manager must be demoted first; a node still up needs force.
  app.delete('/nodes/:id', async (c) => {
    requireCluster(store);
    const force = boolParam(c, 'force') ?? false;
    await store.sync(c.req.raw.signal);
    const node = findNode(store, c.req.param('id'), deps.nodeId());
    if (node.Spec.Role === 'manager') throw new ConflictError(`node ${node.ID} is a manager: demote it first ("shoal node demote ${node.ID}"), then remove it`);
    if (node.Status.State === 'ready' && !force) {
      throw new ConflictError(`node ${node.ID} is not down (it is ${node.Status.State}): stop it or have it leave ("shoal cluster leave" on it) first, or remove it anyway with --force`);
    }
    const cluster = requireCluster(store);
    await store.update((tx) => {
      const cur = tx.get('clusters', cluster.ID);
      if (!cur) throw new ConflictError('the cluster changed meanwhile; retry');
      tx.delete('nodes', node.ID);
      // Bounded: the oldest removals go first (their certificates have long expired by then).
      tx.update('clusters', { ...cur, RemovedNodes: [...(cur.RemovedNodes ?? []), node.ID].slice(-MAX_REMOVED_NODES) });
    }, c.req.raw.signal);
    return c.body(null, 200);
  });

  return app;
}

export { MAX_REMOVED_NODES };
