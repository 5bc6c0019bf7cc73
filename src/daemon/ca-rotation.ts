/**
 * Root CA rotation without downtime, as swarmkit does it (`docker swarm ca --rotate`):
 *
 *  1. `planRotation`: a new root (made here, or given with its key, or held by an external CA) is
 *     cross-signed by the current root, and the Cluster's RootCA gets a `RootRotation`. Managers
 *     now sign with the new root and hand out the cross-signed root with every certificate, so a
 *     node still trusting only the old root accepts them; every node is told to trust both.
 *  2. Nodes learn of it from their heartbeat acks (the roots' digests, src/manager/ca/epoch.ts)
 *     and renew at once: new certificate, trust old + new.
 *  3. `RotationFinisher` (leader only): once every node that is not down holds a certificate from
 *     the new root (its TLSInfo), the new root becomes the root, the old is dropped from trust and
 *     the join tokens take the new digest (old tokens are refused from then on). Nodes renew again
 *     and trust the new root alone.
 */
import 'reflect-metadata';
import { InvalidArgumentError, UnavailableError } from '../lib/errors.ts';
import { CertificateError, JoinTokens, RootCA } from '../manager/ca/index.ts';
import { x509 } from '../manager/ca/x509.ts';
import { type ObjectEvent, ReconcileStage, type StageOptions } from '../manager/stage.ts';
import type { Cluster, ExternalCA, RootCAState } from '../types/index.ts';
import { currentCluster } from './cluster.ts';
import { secretsOf } from './ca-service.ts';

export interface RotationRequest {
  /** `Spec.CAConfig.ForceRotate` as sent; a value other than the last acted on starts a rotation. */
  forceRotate?: number;
  /** `Spec.CAConfig.SigningCACert` / `SigningCAKey` (PEM): rotate to this root. */
  certPem?: string;
  keyPem?: string;
  /** The external CAs the spec will hold (a new root without a key must be signed for by one). */
  externalCAs: ExternalCA[];
}

const sameCert = (a: string, b: string) => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

/**
 * The cluster's RootCA after `req`, or null when it asks for no rotation. Throws a 400 naming the
 * field for a bad certificate or key; the cluster is not touched then.
 */
export async function planRotation(cluster: Cluster, req: RotationRequest): Promise<RootCAState | null> {
  const root = cluster.RootCA;
  if (!root) throw new UnavailableError('this cluster has no root CA yet; try again shortly');
  const lastForced = root.LastForcedRotation ?? cluster.Spec.CAConfig?.ForceRotate ?? 0;
  const forced = req.forceRotate !== undefined && req.forceRotate !== lastForced;
  const given = req.certPem?.trim() ? req.certPem : undefined;
  // The CLI sends back the spec it read: a SigningCACert that is already the root (or the one being rotated to) asks nothing.
  const newCert = given && !sameCert(given, root.CACert) && !(root.RootRotation && sameCert(given, root.RootRotation.CACert)) ? given : undefined;
  if (!newCert && !forced) {
    if (req.keyPem?.trim() && !given) throw new InvalidArgumentError('Spec.CAConfig.SigningCAKey: given without Spec.CAConfig.SigningCACert');
    return null;
  }
  let next: { certPem: string; keyPem: string; cert: x509.X509Certificate };
  if (newCert) {
    if (req.keyPem?.trim()) {
      const ca = await asInvalid(() => RootCA.fromPem(newCert, req.keyPem!, { certWhat: 'Spec.CAConfig.SigningCACert', keyWhat: 'Spec.CAConfig.SigningCAKey' }));
      next = { certPem: newCert, keyPem: (await ca.toPem()).keyPem, cert: ca.certificate };
    } else {
      const servers = req.externalCAs.filter((e) => !e.CACert || sameCert(e.CACert, newCert));
      if (servers.length === 0) {
        throw new InvalidArgumentError('Spec.CAConfig.SigningCAKey: required with Spec.CAConfig.SigningCACert, unless Spec.CAConfig.ExternalCAs names a cfssl server that signs for that root (docker swarm ca --rotate --ca-cert F --ca-key F, or --external-ca)');
      }
      // Asked now: a rotation to a root nobody can sign for would never finish.
      const { cfsslRoot } = await import('./external-ca.ts');
      const i = req.externalCAs.indexOf(servers[0]!);
      const served = await cfsslRoot(servers[0]!).catch((err: Error) => {
        throw new UnavailableError(`Spec.CAConfig.ExternalCAs[${i}].URL: ${err.message}; nothing was changed`);
      });
      if (!sameCert(served, newCert)) throw new InvalidArgumentError(`Spec.CAConfig.ExternalCAs[${i}]: the cfssl server at ${servers[0]!.URL} signs for another root than Spec.CAConfig.SigningCACert`);
      const ca = await asInvalid(async () => {
        const cert = new x509.X509Certificate(newCert);
        if (!cert.getExtension(x509.BasicConstraintsExtension)?.ca) throw new CertificateError('Spec.CAConfig.SigningCACert is not a CA certificate');
        const now = Date.now();
        if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) throw new CertificateError(`Spec.CAConfig.SigningCACert is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not now`);
        return cert;
      });
      next = { certPem: newCert, keyPem: '', cert: ca };
    }
  } else {
    const ca = await RootCA.create({ clusterId: cluster.ID });
    const pem = await ca.toPem();
    next = { certPem: pem.certPem, keyPem: pem.keyPem, cert: ca.certificate };
  }
  if (!root.CAKey) {
    throw new InvalidArgumentError('Spec.CAConfig: the current root CA\'s key is held by an external CA, so shoal cannot cross-sign a new root with it; rotating away from an external root is not supported');
  }
  const current = await RootCA.fromPem(root.CACert, root.CAKey);
  const cross = await current.crossSign(next.cert);
  const { certDigest } = await import('../manager/ca/root.ts');
  return {
    CACert: root.CACert,
    CAKey: root.CAKey,
    CACertHash: root.CACertHash,
    RootRotation: { CACert: next.certPem, CAKey: next.keyPem, CACertHash: await certDigest(next.cert), CrossSignedCACert: cross.toString('pem') },
    LastForcedRotation: req.forceRotate ?? lastForced,
  };
}

async function asInvalid<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CertificateError) throw new InvalidArgumentError(err.message);
    if (err instanceof Error && !(err instanceof InvalidArgumentError)) throw new InvalidArgumentError(`Spec.CAConfig.SigningCACert: not a readable certificate (${err.message})`);
    throw err;
  }
}

/** The issuer public key (SPKI DER, base64) of certificates from `pem`, as TLSInfo records it. */
export function issuerKeyOf(pem: string): string {
  return Buffer.from(new x509.X509Certificate(pem).publicKey.rawData).toString('base64');
}

/** Docker's TLSInfo issuer fields of a root: subject and public key as DER, base64. */
export function issuerInfoOf(pem: string): { CertIssuerSubject: string; CertIssuerPublicKey: string } {
  const cert = new x509.X509Certificate(pem);
  return { CertIssuerSubject: Buffer.from(cert.subjectName.toArrayBuffer()).toString('base64'), CertIssuerPublicKey: Buffer.from(cert.publicKey.rawData).toString('base64') };
}

/** Leader-only: completes a rotation once every node that is not down holds a certificate from the new root. */
export class RotationFinisher extends ReconcileStage {
  readonly name = 'ca-rotation';
  #keyOf: { pem: string; key: string } | null = null;

  readonly #log: (msg: string) => void;

  constructor(o: StageOptions & { log: (msg: string) => void }) {
    super(o);
    this.#log = o.log;
  }

  protected interested(ev: ObjectEvent): boolean {
    return ev.table === 'clusters' || ev.table === 'nodes';
  }

  protected async reconcile(): Promise<void> {
    const cluster = currentCluster(this.store);
    const rotation = cluster?.RootCA?.RootRotation;
    if (!cluster || !rotation) return;
    if (this.#keyOf?.pem !== rotation.CACert) this.#keyOf = { pem: rotation.CACert, key: issuerKeyOf(rotation.CACert) };
    const want = this.#keyOf.key;
    const nodes = this.store.list('nodes').filter((n) => n.Status.State !== 'down');
    const behind = nodes.filter((n) => n.Description.TLSInfo?.CertIssuerPublicKey !== want);
    if (behind.length > 0) return;
    const root = cluster.RootCA!;
    // A conflict (another write got there first) is retried by the stage's loop.
    await this.store.update((tx) => {
      const c = tx.get('clusters', cluster.ID);
      if (!c?.RootCA?.RootRotation || c.RootCA.RootRotation.CACertHash !== rotation.CACertHash) return;
      const tokens = new JoinTokens(rotation.CACertHash, secretsOf(c));
      tx.update('clusters', {
        ...c,
        RootCA: { CACert: rotation.CACert, CAKey: rotation.CAKey, CACertHash: rotation.CACertHash, ...(root.LastForcedRotation !== undefined ? { LastForcedRotation: root.LastForcedRotation } : {}) },
        JoinTokens: { Worker: tokens.token('worker'), Manager: tokens.token('manager') },
      });
    });
    this.#log(`ca: root rotation done: all ${nodes.length} nodes hold certificates from root ${rotation.CACertHash.slice(0, 12)}; the old root ${root.CACertHash.slice(0, 12)} is no longer trusted and the join tokens changed`);
  }
}
