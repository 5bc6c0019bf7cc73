/**
 * `/networks`: overlay networks in Docker's NetworkResource shape (`Id`, `Scope: swarm`,
 * `IPAM.Config[{Subnet, Gateway}]`). The subnet of a network created without one appears once the
 * allocator has given it one (normally within the same request's round trip).
 */
import { Hono } from 'hono';
import { ConflictError } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { holdsAddresses, VXLAN_OPTION } from '../manager/allocator/networks.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Network } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { matchAny, matchLabels, parseFilters } from './filters.ts';
import { limitBody, readJson, requireCluster } from './middleware.ts';
import { findNetwork, normalizeNetworkSpec } from './network-spec.ts';

const NETWORK_FILTERS = ['id', 'name', 'label', 'driver', 'scope', 'type'] as const;

/** Docker's NetworkResource, plus `Version` for our own clients. */
export function presentNetwork(n: Network): Record<string, unknown> {
  return {
    Name: n.Spec.Name,
    Id: n.ID,
    Created: n.CreatedAt,
    Scope: 'swarm',
    Driver: 'overlay',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: n.IPAM?.Config ?? n.Spec.IPAM.Config },
    Internal: !!n.Spec.Internal,
    Attachable: !!n.Spec.Attachable,
    Ingress: n.Spec.Labels?.['io.shoal.network.ingress'] === 'true',
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: n.VNI !== undefined ? { [VXLAN_OPTION]: String(n.VNI) } : {},
    Labels: n.Spec.Labels ?? {},
    Version: n.Version,
  };
}

/** Why `n` cannot be removed now, or null: services that name it, live tasks still on it. */
export function networkInUse(store: MemoryStore, n: Network): string | null {
  const services = store.list('services').filter((s) => s.Spec.TaskTemplate.Networks?.some((a) => a.Target === n.ID));
  if (services.length) {
    const names = services.map((s) => s.Spec.Name).sort();
    return `network ${n.Spec.Name} is in use by service${names.length > 1 ? 's' : ''} ${names.join(', ')}: remove ${names.length > 1 ? 'them' : 'it'} or take the network out of ${names.length > 1 ? 'their' : 'its'} spec first`;
  }
  const tasks = store.list('tasks').filter((t) => holdsAddresses(t) && t.NetworksAttachments?.some((a) => a.Network.ID === n.ID));
  if (tasks.length) return `network ${n.Spec.Name} still has ${tasks.length} task${tasks.length > 1 ? 's' : ''} attached (of removed services, stopping): try again once they have stopped`;
  return null;
}

/** How long a removal waits for the tasks of removed services to leave the network. */
const DRAIN_WAIT_MS = 30_000;

/**
 * Why `n` cannot be removed, after waiting (bounded) for the tasks of services already removed to
 * stop: swarmkit lets such a network go at once, so `docker stack rm` removes the services and then
 * the networks without waiting; we hold the answer until the addresses are free instead.
 */
function untilFree(store: MemoryStore, n: Network, signal: AbortSignal, ms = DRAIN_WAIT_MS): Promise<string | null> {
  const busy = networkInUse(store, n);
  const byService = store.list('services').some((s) => s.Spec.TaskTemplate.Networks?.some((a) => a.Target === n.ID));
  if (!busy || byService) return Promise.resolve(busy);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      unwatch();
      signal.removeEventListener('abort', done);
      resolve(networkInUse(store, n));
    };
    const unwatch = store.watch(() => {
      if (!networkInUse(store, n)) done();
    });
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

export function networksRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/networks', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const f = parseFilters(c.req.query('filters'), NETWORK_FILTERS);
    const out = store
      .list('networks')
      .filter((n) =>
        matchAny(f.get('id'), (v) => n.ID.startsWith(v)) &&
        matchAny(f.get('name'), (v) => n.Spec.Name.includes(v)) &&
        matchAny(f.get('driver'), (v) => v === 'overlay') &&
        matchAny(f.get('scope'), (v) => v === 'swarm') &&
        matchAny(f.get('type'), (v) => v === 'custom') &&
        matchLabels(f.get('label'), n.Spec.Labels),
      )
      .sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))
      .map(presentNetwork);
    return c.json(out);
  });

  app.post('/networks/create', limitBody, async (c) => {
    requireCluster(store);
    const body = await readJson(c);
    await store.sync(c.req.raw.signal);
    const spec = normalizeNetworkSpec(body, store);
    if (store.by('networks', 'name', spec.Name).length) throw new ConflictError(`network with name ${spec.Name} already exists`);
    const id = newId();
    await store.update((tx) => tx.create('networks', { ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: spec }), c.req.raw.signal);
    return c.json({ Id: id, Warning: '' }, 201);
  });

  app.get('/networks/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    return c.json(presentNetwork(findNetwork(store, c.req.param('id'))));
  });

  app.delete('/networks/:id', async (c) => {
    requireCluster(store);
    await store.sync(c.req.raw.signal);
    const n = findNetwork(store, c.req.param('id'));
    const busy = await untilFree(store, n, c.req.raw.signal);
    if (busy) throw new ConflictError(busy);
    await store.update((tx) => tx.delete('networks', n.ID), c.req.raw.signal);
    return c.body(null, 204);
  });

  return app;
}
