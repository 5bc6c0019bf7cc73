import { Hono } from 'hono';
import type { ClusterSpec } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { limitBody, readJson, requireCluster } from './middleware.ts';
import { swarmInitSchema, validate } from './schemas.ts';

export function swarmRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/swarm', async (c) => {
    await store.sync(c.req.raw.signal);
    return c.json(requireCluster(store));
  });

  app.post('/swarm/init', limitBody, async (c) => {
    const req = validate(swarmInitSchema, await readJson(c, true));
    const nodeId = await deps.initCluster({
      ListenAddr: req.ListenAddr,
      AdvertiseAddr: req.AdvertiseAddr,
      Spec: req.Spec as Partial<ClusterSpec> | undefined,
    });
    return c.json(nodeId);
  });

  return app;
}
