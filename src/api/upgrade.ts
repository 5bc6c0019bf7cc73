/**
 * `/shoal/upgrade`: the fleet's rolling self-upgrade (our addition; Docker has none).
 *
 *   POST /shoal/upgrade?sha256=H&parallelism=N    body: the new executable (application/octet-stream)
 *   POST /shoal/upgrade?url=U&sha256=H            the manager downloads it
 *   POST /shoal/upgrade/rollback                  the previous executable back on every node
 *   GET  /shoal/upgrade                           the record: phase and each node's step
 */
import { Hono } from 'hono';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../lib/errors.ts';
import type { ApiDeps, UpgradeApi } from './deps.ts';

export function upgradeRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  const api = (): UpgradeApi => {
    if (!deps.upgrade) throw new UnavailableError('this daemon cannot upgrade the fleet');
    return deps.upgrade;
  };
  app.get('/shoal/upgrade', (c) => {
    const rec = api().status();
    if (!rec) throw new NotFoundError('no upgrade has been made in this cluster');
    return c.json(rec);
  });
  app.post('/shoal/upgrade', async (c) => {
    const p = c.req.query('parallelism');
    const parallelism = p === undefined ? undefined : Number(p);
    if (p !== undefined && !Number.isInteger(parallelism)) throw new InvalidArgumentError(`parallelism "${p}": expected a whole number`);
    const url = c.req.query('url') || undefined;
    const rec = await api().begin({ body: url ? null : c.req.raw.body, url, sha256: c.req.query('sha256') || undefined, parallelism });
    return c.json(rec, 202);
  });
  app.post('/shoal/upgrade/rollback', async (c) => c.json(await api().rollback(), 202));
  return app;
}
