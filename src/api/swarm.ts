import { Hono } from 'hono';
import { ConflictError, InvalidArgumentError, UnavailableError } from '../lib/errors.ts';
import { newUnlockKey } from '../lib/unlock-key.ts';
import type { Cluster } from '../types/index.ts';
import { ForbiddenError, isAdmin } from './client-auth.ts';
import type { ApiDeps } from './deps.ts';
import { checkCAConfig, checkInitSpec, mergeClusterSpec } from './cluster-spec.ts';
import { boolParam, limitBody, readJson, requireCluster, versionParam } from './middleware.ts';
import { swarmInitSchema, swarmJoinSchema, validate } from './schemas.ts';

type TLSInfo = { TrustRoot: string; CertIssuerSubject?: string; CertIssuerPublicKey?: string };

/**
 * The cluster as Docker shows it: the CA's certificate as TLSInfo (with the issuer fields when
 * `issuer` is given), `RootRotationInProgress`, never a key (nor the unlock key). `SigningCACert` shows; `SigningCAKey`
 * is never kept.
 */
export function publicCluster(c: Cluster, showTokens = true, issuer?: Omit<TLSInfo, 'TrustRoot'>): Omit<Cluster, 'RootCA' | 'RemovedNodes' | 'ClientCerts' | 'UnlockKey'> & { TLSInfo?: TLSInfo; RootRotationInProgress?: boolean } {
  const { RootCA, RemovedNodes: _removed, ClientCerts: _bundles, UnlockKey: _key, ...rest } = c;
  // Docker blanks the tokens for whoever may not join nodes: here, any client but an admin bundle.
  const JoinTokens = showTokens ? rest.JoinTokens : { Worker: '', Manager: '' };
  return { ...rest, JoinTokens, ...(RootCA ? { TLSInfo: { TrustRoot: RootCA.CACert, ...issuer }, RootRotationInProgress: !!RootCA.RootRotation } : {}) };
}

export function swarmRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get('/swarm', async (c) => {
    if (!requireCluster(store).RootCA) await deps.identityReady?.();
    await store.sync(c.req.raw.signal);
    const cluster = requireCluster(store);
    const issuer = cluster.RootCA && deps.issuerInfo ? await deps.issuerInfo(cluster.RootCA.CACert) : undefined;
    return c.json(publicCluster(cluster, isAdmin(c), issuer));
  });

  app.post('/swarm/init', limitBody, async (c) => {
    const req = validate(swarmInitSchema, await readJson(c, true));
    const nodeId = await deps.initCluster({
      ListenAddr: req.ListenAddr,
      AdvertiseAddr: req.AdvertiseAddr,
      Spec: checkInitSpec(req.Spec),
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

  // Autolock's key: shown only to admin clients (Docker shows it to whoever may manage the swarm);
  // "" while autolock is off, which the docker CLI reports as "no unlock key is set".
  app.get('/swarm/unlockkey', async (c) => {
    requireCluster(store);
    if (!isAdmin(c)) throw new ForbiddenError('the unlock key is shown to admin clients only');
    await store.sync(c.req.raw.signal);
    return c.json({ UnlockKey: requireCluster(store).UnlockKey ?? '' });
  });
  // A running manager is not locked (a locked one answers this from src/api/locked.ts): Docker's 409.
  app.post('/swarm/unlock', () => {
    throw new ConflictError('swarm is not locked');
  });

  // Docker's swarm update: the spec (fields shoal models; those left out are kept) with
  // ?version=, and/or the join-token and unlock-key rotations (which need no version).
  app.post('/swarm/update', limitBody, async (c) => {
    const cluster = requireCluster(store);
    const body = await readJson(c, true);
    const hasSpec = !!body && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length > 0;
    const worker = boolParam(c, 'rotateWorkerToken');
    const manager = boolParam(c, 'rotateManagerToken');
    const unlockKey = boolParam(c, 'rotateManagerUnlockKey');
    if (!hasSpec && !worker && !manager && !unlockKey) {
      throw new InvalidArgumentError('nothing to update: send a ClusterSpec with ?version=, and/or rotateWorkerToken=true, rotateManagerToken=true, rotateManagerUnlockKey=true');
    }
    if ((worker || manager) && !deps.rotateJoinToken) throw new InvalidArgumentError('this daemon cannot rotate join tokens');
    if (hasSpec) {
      const version = versionParam(c);
      mergeClusterSpec(cluster.Spec, body); // a bad field is refused before waiting for a read
      const ca = checkCAConfig((body as Record<string, unknown>).CAConfig);
      // The docker CLI sends the whole spec back: the ForceRotate it read asks for nothing.
      const lastForced = cluster.RootCA?.LastForcedRotation ?? cluster.Spec.CAConfig?.ForceRotate ?? 0;
      const asks = ca && ((ca.ForceRotate !== undefined && ca.ForceRotate !== lastForced) || !!ca.SigningCACert || !!ca.SigningCAKey);
      if (asks && !cluster.RootCA) await deps.identityReady?.(); // the CA is made when first needed
      await store.sync(c.req.raw.signal);
      const cur = requireCluster(store);
      const spec = mergeClusterSpec(cur.Spec, body);
      let rootCA = cur.RootCA;
      if (asks) {
        if (!cur.RootCA || !deps.planRootRotation) throw new UnavailableError('this cluster has no root CA yet; try again shortly');
        const planned = await deps.planRootRotation(cur, { forceRotate: ca.ForceRotate, certPem: ca.SigningCACert, keyPem: ca.SigningCAKey, externalCAs: spec.CAConfig?.ExternalCAs ?? [] });
        if (planned) {
          rootCA = planned;
          // The spec names the root rotated to by hand; a generated one leaves it empty (the key is never kept).
          const { SigningCACert: _last, ...rest } = spec.CAConfig ?? cur.Spec.CAConfig;
          spec.CAConfig = { ...rest, ForceRotate: planned.LastForcedRotation ?? 0, ...(ca.SigningCACert ? { SigningCACert: ca.SigningCACert } : {}) };
        }
      }
      const next: Cluster = { ...cur, Version: { Index: version }, Spec: spec, ...(rootCA ? { RootCA: rootCA } : {}) };
      // Turning autolock on makes the key every manager seals its keys under; off removes it, and
      // the managers write their keys in the clear again (src/daemon/autolock.ts).
      if (spec.EncryptionConfig?.AutoLockManagers) next.UnlockKey = cur.UnlockKey ?? newUnlockKey();
      else delete next.UnlockKey;
      await store.update((tx) => tx.update('clusters', next), c.req.raw.signal);
    }
    if (unlockKey) {
      await store.sync(c.req.raw.signal);
      await store.update((tx) => {
        const cur = tx.get('clusters', cluster.ID);
        if (!cur?.UnlockKey) throw new InvalidArgumentError('rotateManagerUnlockKey: autolock is off, so there is no unlock key to rotate ("swarm update --autolock=true" first)');
        tx.update('clusters', { ...cur, UnlockKey: newUnlockKey() });
      }, c.req.raw.signal);
    }
    if (worker) await deps.rotateJoinToken!('worker');
    if (manager) await deps.rotateJoinToken!('manager');
    return c.body(null, 200);
  });

  return app;
}

