import { Hono } from 'hono';
import { InvalidArgumentError } from '../lib/errors.ts';
import type { Cluster, ClusterSpec } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { boolParam, limitBody, readJson, requireCluster } from './middleware.ts';
import { swarmInitSchema, swarmJoinSchema, validate } from './schemas.ts';

/** The cluster as Docker shows it: the CA's certificate as TLSInfo, never its key. */
export function publicCluster(c: Cluster): Omit<Cluster, 'RootCA' | 'RemovedNodes'> & { TLSInfo?: { TrustRoot: string } } {
  const { RootCA, RemovedNodes: _removed, ...rest } = c;
  return { ...rest, ...(RootCA ? { TLSInfo: { TrustRoot: RootCA.CACert } } : {}) };
}

export function swarmRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/swarm', async (c) => {
    if (!requireCluster(store).RootCA) await deps.identityReady?.();
    await store.sync(c.req.raw.signal);
    return c.json(publicCluster(requireCluster(store)));
  });

  app.post('/swarm/init', limitBody, async (c) => {
    const req = validate(swarmInitSchema, await readJson(c, true));
    checkManagersSpec(req.Spec?.Managers);
    const nodeId = await deps.initCluster({
      ListenAddr: req.ListenAddr,
      AdvertiseAddr: req.AdvertiseAddr,
      Spec: req.Spec as Partial<ClusterSpec> | undefined,
    });
    return c.json(nodeId);
  });

  app.post('/swarm/join', limitBody, async (c) => {
    const req = validate(swarmJoinSchema, await readJson(c));
    if (!deps.joinCluster) throw new InvalidArgumentError('this daemon cannot join a cluster through its API');
    return c.json(await deps.joinCluster(req));
  });

  // Docker's swarm leave: this host leaves its cluster (the daemon stops; start it again to init or join).
  app.post('/swarm/leave', async (c) => {
    if (!deps.leaveCluster) throw new InvalidArgumentError('this daemon cannot leave a cluster through its API');
    await deps.leaveCluster(boolParam(c, 'force') ?? false);
    return c.body(null, 200);
  });

  // Docker's swarm update; here only the join-token rotation (the spec is not updatable yet).
  app.post('/swarm/update', async (c) => {
    requireCluster(store);
    const worker = boolParam(c, 'rotateWorkerToken');
    const manager = boolParam(c, 'rotateManagerToken');
    if (!worker && !manager) throw new InvalidArgumentError('nothing to update: pass rotateWorkerToken=true and/or rotateManagerToken=true');
    if (!deps.rotateJoinToken) throw new InvalidArgumentError('this daemon cannot rotate join tokens');
    if (worker) await deps.rotateJoinToken('worker');
    if (manager) await deps.rotateJoinToken('manager');
    return c.body(null, 200);
  });

  return app;
}

/** `Spec.Managers` (our addition, src/daemon/manager-count.ts): named fields, sane values. */
function checkManagersSpec(m: unknown): void {
  if (m === undefined) return;
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new InvalidArgumentError('Spec.Managers: expected an object');
  const { Desired, LostGracePeriod, FailureDomainLabel, ...rest } = m as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new InvalidArgumentError(`Spec.Managers: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`);
  if (Desired !== undefined && (!Number.isInteger(Desired) || (Desired as number) < -1)) throw new InvalidArgumentError('Spec.Managers.Desired: expected 0 (automatic), -1 (off) or a number of managers');
  if (LostGracePeriod !== undefined && (typeof LostGracePeriod !== 'number' || !Number.isFinite(LostGracePeriod) || LostGracePeriod < 0)) throw new InvalidArgumentError('Spec.Managers.LostGracePeriod: expected nanoseconds ≥ 0');
  if (FailureDomainLabel !== undefined && (typeof FailureDomainLabel !== 'string' || !FailureDomainLabel || FailureDomainLabel.length > 256)) throw new InvalidArgumentError('Spec.Managers.FailureDomainLabel: expected a label key');
}
