/**
 * `GET /plugins`: this daemon's third-party executors, loaded and failed. Docker's route of the same
 * name lists engine plugins; the fields Docker's CLI reads (Id, Name, Enabled, Config.Description)
 * are filled in, ours (Runtime, File, Error) added beside them.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';

export interface PluginView {
  Id: string;
  Name: string;
  Enabled: boolean;
  /** The runtime the plugin registered (`TaskTemplate.Runtime`), when it loaded. */
  Runtime?: string;
  File: string;
  /** Why it did not load. */
  Error?: string;
  Config: { Description: string };
}

export function pluginsRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/plugins', (c) => {
    const report = deps.plugins?.() ?? { dir: '', plugins: [] };
    const out: PluginView[] = report.plugins.map((p) => ({
      Id: createHash('sha256').update(p.file).digest('hex'),
      Name: basename(p.file).replace(/\.(m?js|ts)$/, ''),
      Enabled: p.error === undefined,
      ...(p.runtime !== undefined ? { Runtime: p.runtime } : {}),
      File: p.file,
      ...(p.error !== undefined ? { Error: p.error } : {}),
      Config: { Description: p.error === undefined ? `shoal executor for runtime "${p.runtime}"` : `not loaded: ${p.error}` },
    }));
    c.header('Shoal-Plugin-Dir', report.dir);
    return c.json(out);
  });
  return app;
}
