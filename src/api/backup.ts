/**
 * `POST /swarm/backup`: a backup file of the cluster state (src/backup/format.ts), taken on the
 * manager asked (daemon/backup.ts says how it is consistent). A POST, not a GET: the file holds the
 * root CA's key, the join tokens and every secret, so a read-only client bundle is refused like
 * for any write (client-auth.ts); the unix socket and admin bundles may take one.
 */
import { Hono } from 'hono';
import { UnavailableError } from '../lib/errors.ts';
import type { ApiDeps } from './deps.ts';
import { requireCluster } from './middleware.ts';

export function backupRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.post('/swarm/backup', async (c) => {
    requireCluster(deps.store);
    if (!deps.backup) throw new UnavailableError('this daemon cannot take backups');
    const { header, bytes } = await deps.backup(c.req.raw.signal);
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="shoal-${header.ClusterID}-${header.RaftIndex}.backup"`,
      'x-shoal-backup-index': String(header.RaftIndex),
      'x-shoal-backup-term': String(header.RaftTerm),
    });
  });
  return app;
}
