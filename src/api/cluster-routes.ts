/**
 * The cluster-wide routes: what a manager serves and a worker refuses (app.ts's workerRefusal), in
 * their order. app.ts imports this module on the first request that reaches them, so a worker,
 * which refuses them, never evaluates them (nor zod and the manager code they import).
 */
import { Hono } from 'hono';
import { backupRoutes } from './backup.ts';
import { caRoutes } from './ca.ts';
import type { ApiDeps } from './deps.ts';
import { eventsRoutes } from './events.ts';
import { networksRoutes } from './networks.ts';
import { nodesRoutes } from './nodes.ts';
import { pluginsRoutes } from './plugins.ts';
import { raftRoutes } from './raft.ts';
import { secretsRoutes } from './secrets.ts';
import { servicesRoutes } from './services.ts';
import { swarmRoutes } from './swarm.ts';
import { tasksRoutes } from './tasks.ts';
import { upgradeRoutes } from './upgrade.ts';

export function clusterRoutes(deps: ApiDeps, app: Hono): Hono {
  const routes = [swarmRoutes, backupRoutes, servicesRoutes, tasksRoutes, nodesRoutes, pluginsRoutes, networksRoutes, caRoutes, secretsRoutes, raftRoutes, eventsRoutes, upgradeRoutes];
  for (const r of routes) app.route('/', r(deps));
  return app;
}
