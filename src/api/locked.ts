/**
 * The admin API of a locked manager (autolock on, restarted, key not given yet): Docker's shape
 * of it. `POST /swarm/unlock` with the key, `/_ping`, `/version` and `/info` (LocalNodeState
 * "locked"); anything else is Docker's 503 "Swarm is encrypted and needs to be unlocked…".
 */
import { Hono } from 'hono';
import { hostname } from 'node:os';
import { InvalidArgumentError, UnavailableError } from '../lib/errors.ts';
import type { ApiDeps } from './deps.ts';
import { limitBody, onError, readJson, stripVersion } from './middleware.ts';
import { versionBody } from './system.ts';

export interface LockedApiDeps {
  nodeId: string;
  version: ApiDeps['version'];
  /** Checks the key and starts the manager with it; throws InvalidUnlockKeyError (401) for a wrong one. */
  unlock(unlockKey: string): Promise<void>;
  /** Docker's message for every other request. */
  lockedMessage: string;
}

export function createLockedApp(deps: LockedApiDeps): Hono {
  const app = new Hono({ getPath: stripVersion });
  app.onError(onError);
  const ping = (c: import('hono').Context) => {
    c.header('API-Version', deps.version.ApiVersion);
    c.header('OSType', deps.version.Os);
    c.header('Swarm', 'locked');
    c.header('Cache-Control', 'no-cache, no-store, must-revalidate');
    return c.text('OK');
  };
  app.get('/_ping', ping);
  app.on('HEAD', '/_ping', ping);
  app.get('/version', (c) => c.json(versionBody(deps.version)));
  app.get('/info', (c) =>
    c.json({
      ID: deps.nodeId,
      Name: hostname(),
      ServerVersion: deps.version.Version,
      OperatingSystem: deps.version.Os,
      OSType: deps.version.Os,
      Architecture: deps.version.Arch,
      Swarm: { NodeID: deps.nodeId, NodeAddr: '', LocalNodeState: 'locked', ControlAvailable: false, Error: '', RemoteManagers: [], Nodes: 0, Managers: 0 },
    }),
  );
  app.post('/swarm/unlock', limitBody, async (c) => {
    const body = await readJson(c);
    const key = (body as { UnlockKey?: unknown } | null)?.UnlockKey;
    if (typeof key !== 'string' || !key.trim()) throw new InvalidArgumentError('UnlockKey: expected the unlock key ("SWMKEY-1-…", from "shoal swarm unlock-key" on another manager)');
    await deps.unlock(key.trim());
    return c.body(null, 200);
  });
  app.all('*', () => {
    throw new UnavailableError(deps.lockedMessage);
  });
  return app;
}
