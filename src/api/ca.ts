/**
 * Client bundles for the admin API over TCP (our addition; Docker makes them with openssl by hand):
 * `POST /ca/client-certs` signs a client's public key with the cluster CA for a name, a role and a
 * lifetime; `GET /ca/client-certs` lists them; `POST /ca/client-certs/{ref}/revoke` refuses them
 * from then on, on every manager (the list lives in the replicated Cluster object). Writes need an
 * admin (the socket or an admin bundle): readOnlyGuard refuses them to read-only bundles.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import type { ClientCertRecord, Cluster } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { formatNs, minNodeCertExpiryNs } from '../manager/ca/expiry.ts';
import { limitBody, readJson, requireCluster } from './middleware.ts';
import { validate } from './schemas.ts';

/** Live records kept in the Cluster object: a bound on its size. */
export const MAX_CLIENT_CERTS = 1000;
const MAX_EXPIRY_NS = 10 * 365 * 24 * 3600e9;
/** A minute; lower only where SHOAL_TEST_MIN_CERT_EXPIRY lowers node certificates' minimum (tests of expiry). */
const MIN_CLIENT_EXPIRY_NS = 60e9;

export const clientCertSchema = z.strictObject({
  Name: z.string().min(1).max(64),
  Role: z.enum(['admin', 'read-only']).optional(),
  /** Lifetime in ns (default 90 days). */
  Expiry: z.number().int().min(1e9, 'expected at least a second (in nanoseconds)').max(MAX_EXPIRY_NS).optional(),
  /** The client's ECDSA P-256 public key, PEM SubjectPublicKeyInfo: the private key stays with the client. */
  PublicKey: z.string().min(1).max(8192),
});

/** Records whose certificate has not expired: an expired one is refused anyway, and may go. */
export function liveRecords(c: Cluster, now = Date.now()): ClientCertRecord[] {
  return (c.ClientCerts ?? []).filter((r) => Date.parse(r.NotAfter) > now);
}

/** The records `ref` names: a serial (or a unique prefix of 8+ hex digits), else every unrevoked one of that name. */
export function findRecords(records: ClientCertRecord[], ref: string): ClientCertRecord[] {
  const r = ref.trim().toLowerCase().replace(/:/g, '');
  const bySerial = /^[0-9a-f]{8,}$/.test(r) ? records.filter((x) => x.Serial.startsWith(r)) : [];
  if (bySerial.length > 1) throw new InvalidArgumentError(`"${ref}" is the start of ${bySerial.length} serials: give more of it`);
  if (bySerial.length === 1) return bySerial;
  return records.filter((x) => x.Name === ref.trim() && !x.RevokedAt);
}

/** Change the cluster's records, retrying when another write got there first. */
async function updateRecords(store: MemoryStore, fn: (records: ClientCertRecord[]) => ClientCertRecord[], signal: AbortSignal): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.update((tx) => {
        const cur = tx.get('clusters', requireCluster(store).ID);
        if (!cur) throw new UnavailableError('this node is not in a cluster');
        tx.update('clusters', { ...cur, ClientCerts: fn(liveRecords(cur)) });
      }, signal);
      return;
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 2) throw err;
      await store.sync(signal);
    }
  }
}

export function caRoutes(deps: ApiDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.post('/ca/client-certs', limitBody, async (c) => {
    const req = validate(clientCertSchema, await readJson(c));
    const minNs = Math.min(MIN_CLIENT_EXPIRY_NS, minNodeCertExpiryNs());
    if (req.Expiry !== undefined && req.Expiry < minNs) throw new InvalidArgumentError(`Expiry: ${formatNs(req.Expiry)} is too short: a client bundle lives at least ${formatNs(minNs)}`);
    if (!requireCluster(store).RootCA) await deps.identityReady?.(); // the CA is made when first needed
    await store.sync(c.req.raw.signal);
    const cluster = requireCluster(store);
    if (!cluster.RootCA) throw new UnavailableError('this cluster has no root CA yet; try again shortly');
    if (liveRecords(cluster).length >= MAX_CLIENT_CERTS) throw new ConflictError(`this cluster already has ${MAX_CLIENT_CERTS} unexpired client bundles: revoke some first ("shoal ca revoke")`);
    // Loaded here: x509 is not needed for the API to come up.
    const [{ RootCA }, { issueClientCert }, { trustPemOf }] = await Promise.all([import('../manager/ca/root.ts'), import('../manager/ca/client-cert.ts'), import('../manager/ca/epoch.ts')]);
    // During a root rotation bundles come from the new root, with both roots as their CA: they
    // outlive the rotation, while those of the old root stop working when it ends.
    const signing = cluster.RootCA.RootRotation ?? cluster.RootCA;
    if (!signing.CAKey) throw new UnavailableError('the root CA key is held by an external CA: shoal cannot sign client bundles (make them with that CA)');
    const ca = await RootCA.fromPem(signing.CACert, signing.CAKey);
    const issued = await issueClientCert(ca, {
      name: req.Name, role: req.Role ?? 'admin', clusterId: cluster.ID, publicKeyPem: req.PublicKey,
      ...(req.Expiry !== undefined ? { lifetimeMs: Math.round(req.Expiry / 1e6) } : {}),
    });
    const record: ClientCertRecord = { Serial: issued.serial, Name: issued.name, Role: issued.role, IssuedAt: new Date().toISOString(), NotAfter: new Date(issued.notAfter).toISOString() };
    // Recorded before it is handed out, so that whatever was issued can be listed and revoked.
    await updateRecords(store, (records) => [...records, record], c.req.raw.signal);
    return c.json({ ...record, Certificate: issued.certPem, CACert: trustPemOf(cluster.RootCA) }, 201);
  });

  app.get('/ca/client-certs', async (c) => {
    await store.sync(c.req.raw.signal);
    return c.json(liveRecords(requireCluster(store)));
  });

  app.post('/ca/client-certs/:ref/revoke', async (c) => {
    const ref = c.req.param('ref');
    await store.sync(c.req.raw.signal);
    const hits = findRecords(liveRecords(requireCluster(store)), ref);
    if (hits.length === 0) throw new NotFoundError(`no unexpired client bundle has the serial or name "${ref}" ("shoal ca ls" lists them)`);
    const at = new Date().toISOString();
    const serials = new Set(hits.map((h) => h.Serial));
    await updateRecords(store, (records) => records.map((r) => (serials.has(r.Serial) && !r.RevokedAt ? { ...r, RevokedAt: at } : r)), c.req.raw.signal);
    return c.json({ Revoked: [...serials] });
  });

  return app;
}
