/**
 * The admin API: Docker Engine API paths and swarm-mode shapes, routes only (validate, translate,
 * call the store). `createApp(deps)` has no I/O of its own: tests drive it with `app.request()`.
 */
import { Hono } from 'hono';
import { backupRoutes } from './backup.ts';
import { caRoutes } from './ca.ts';
import { readOnlyGuard } from './client-auth.ts';
import type { ApiDeps } from './deps.ts';
import { metricsRoutes } from './metrics.ts';
import { eventsRoutes } from './events.ts';
import { onError, stripVersion, workerRefusal } from './middleware.ts';
import { networksRoutes } from './networks.ts';
import { nodesRoutes } from './nodes.ts';
import { pluginsRoutes } from './plugins.ts';
import { secretsRoutes } from './secrets.ts';
import { raftRoutes } from './raft.ts';
import { servicesRoutes } from './services.ts';
import { swarmRoutes } from './swarm.ts';
import { systemRoutes } from './system.ts';
import { tasksRoutes } from './tasks.ts';
import { uiRoutes } from './ui.ts';
import { upgradeRoutes } from './upgrade.ts';

export function createApp(deps: ApiDeps): Hono {
  const app = new Hono({ getPath: stripVersion });
  app.onError(onError);
  app.notFound((c) => c.json({ message: `page not found: ${c.req.method} ${stripVersion(c.req.raw)}` }, 404));
  app.use('*', readOnlyGuard);
  app.route('/', systemRoutes(deps));
  app.route('/', uiRoutes());
  app.route('/', metricsRoutes(deps));
  app.use('*', workerRefusal(deps, ['/swarm/leave', '/swarm/join']));
  app.route('/', swarmRoutes(deps));
  app.route('/', backupRoutes(deps));
  app.route('/', servicesRoutes(deps));
  app.route('/', tasksRoutes(deps));
  app.route('/', nodesRoutes(deps));
  app.route('/', pluginsRoutes(deps));
  app.route('/', networksRoutes(deps));
  app.route('/', caRoutes(deps));
  app.route('/', secretsRoutes(deps));
  app.route('/', raftRoutes(deps));
  app.route('/', eventsRoutes(deps));
  app.route('/', upgradeRoutes(deps));
  return app;
}
