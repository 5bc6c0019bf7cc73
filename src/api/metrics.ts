/**
 * `GET /metrics`: Prometheus' text format, on every node (a worker too: it answers with what it
 * knows, its own tasks, mesh and process). Mounted before the worker refusal for that reason.
 * Read-only, so a read-only client bundle may scrape it over TCP.
 */
import { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';

export function metricsRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    if (!deps.metrics) return c.json({ message: 'this daemon serves no metrics' }, 404);
    const { contentType, body } = await deps.metrics();
    return c.body(body, 200, { 'content-type': contentType });
  });
  return app;
}
