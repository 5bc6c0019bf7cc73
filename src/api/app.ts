/**
 * The admin API: Docker Engine API paths and swarm-mode shapes, routes only (validate, translate,
 * call the store). `createApp(deps)` has no I/O of its own: tests drive it with `app.request()`.
 */
import { type Context, Hono } from 'hono';
import { readOnlyGuard } from './client-auth.ts';
import type { ApiDeps } from './deps.ts';
import { metricsRoutes } from './metrics.ts';
import { onError, stripVersion, workerRefusal } from './middleware.ts';
import { systemRoutes } from './system.ts';
import { uiRoutes } from './ui.ts';

export function createApp(deps: ApiDeps): Hono {
  const app = base();
  app.use('*', readOnlyGuard);
  app.route('/', systemRoutes(deps));
  app.route('/', uiRoutes());
  app.route('/', metricsRoutes(deps));
  app.use('*', workerRefusal(deps, ['/swarm/leave', '/swarm/join']));
  // The cluster-wide routes (cluster-routes.ts) are built on the first request that gets this far:
  // a worker refuses nearly all of them above, and evaluating them (zod schemas, manager code)
  // cost ~5 MiB of its RSS. They answer in an app of their own with the same error and not-found
  // handlers, given the same request and env, so what a client sees is unchanged.
  let cluster: Promise<Hono> | undefined;
  app.all('*', async (c: Context) => {
    cluster ??= import('./cluster-routes.ts').then((m) => m.clusterRoutes(deps, base()));
    return (await cluster).fetch(c.req.raw, c.env);
  });
  return app;
}

function base(): Hono {
  const app = new Hono({ getPath: stripVersion });
  app.onError(onError);
  app.notFound((c) => c.json({ message: `page not found: ${c.req.method} ${stripVersion(c.req.raw)}` }, 404));
  return app;
}
