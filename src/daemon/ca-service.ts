/**
 * The cluster CA as the daemon uses it: made at `init` (or taken from --external-ca), kept in the
 * replicated store's Cluster object (certificate, digest, key) so that every manager can admit and
 * renew; and the join tokens, whose secrets also live there. Loaded on demand: x509 is not needed
 * for a one-host daemon's API to come up.
 */
import 'reflect-metadata'; // before anything loads @peculiar/x509 (its DI container checks at import time)
import { readFileSync } from 'node:fs';
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../lib/errors.ts';
import { admit, type JoinRequest, JoinTokens, type NodeIdentity, issueNodeCert, parseJoinToken, RootCA, renewalTime } from '../manager/ca/index.ts';
import type { JoinAnswer } from '../net/join.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Cluster, Node, NodeDescription, NodeRole } from '../types/index.ts';
import { nodeCertLifetimeMs } from '../manager/ca/expiry.ts';
import { type ClusterIdentity, currentCluster } from './cluster.ts';
import { skewProblem } from './upgrade/skew.ts';
import type { Membership } from './membership.ts';

/** `--external-ca cert.pem,key.pem`. */
export async function loadExternalCA(arg: string): Promise<RootCA> {
  const parts = arg.split(',');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new InvalidArgumentError(`--external-ca "${arg}": expected CERT.pem,KEY.pem`);
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`--external-ca: cannot read the ${what} ${f} (${(err as Error).message})`);
    }
  };
  return RootCA.fromPem(read(parts[0], 'certificate'), read(parts[1], 'key'));
}

/**
 * The identity of a cluster made without one (a new cluster, or one made by an earlier version):
 * its root CA, join tokens, and this first manager's certificate. When the store already has a root
 * (a restart after it was stored, before cluster.json was written), only the certificate is issued.
 */
export async function makeClusterIdentity(cluster: Cluster, nodeId: string, publicKey: Uint8Array, externalCa?: string): Promise<{ identity: ClusterIdentity; membership: Membership; tlsInfo: NonNullable<NodeDescription['TLSInfo']> }> {
  const clusterId = cluster.ID;
  const ca = cluster.RootCA
    ? await RootCA.fromPem(cluster.RootCA.CACert, cluster.RootCA.CAKey)
    : externalCa ? await loadExternalCA(externalCa) : await RootCA.create({ clusterId });
  const tokens = new JoinTokens(ca.trust.digest, cluster.RootCA ? secretsOf(cluster) : undefined);
  const { certPem, keyPem } = await ca.toPem();
  const own = await issueNodeCert(ca, { nodeId, role: 'manager', clusterId, publicKey, lifetimeMs: certLifetimeMs(cluster) });
  return {
    tlsInfo: tlsInfoOf(own, ca),
    identity: {
      ID: clusterId,
      RootCA: { CACert: certPem, CAKey: keyPem, CACertHash: ca.trust.digest },
      JoinTokens: { Worker: tokens.token('worker'), Manager: tokens.token('manager') },
    },
    membership: { ClusterID: clusterId, Role: 'manager', RootCA: certPem, Cert: own.certPem, Joined: false, Managers: [] },
  };
}

/** A token with a fresh secret for `role`: the old one stops working once this is stored. */
export function rotatedToken(cluster: Cluster, role: NodeRole): string {
  const digest = cluster.RootCA?.CACertHash;
  if (!digest) throw new UnavailableError('this cluster has no root CA yet (made by an earlier version): restart its leader to make one');
  const tokens = new JoinTokens(digest, secretsOf(cluster));
  return tokens.rotate(role);
}

function secretsOf(cluster: Cluster): Record<NodeRole, string> {
  return { worker: parseJoinToken(cluster.JoinTokens.Worker).secret, manager: parseJoinToken(cluster.JoinTokens.Manager).secret };
}

/** The signing side of the CA, for managers: built from the store, cached per root. */
export class ClusterCA {
  #cached: { hash: string; ca: Promise<RootCA> } | null = null;

  constructor(private readonly store: MemoryStore, private readonly self: () => NodeIdentity | null) {}

  async #ca(): Promise<{ ca: RootCA; cluster: Cluster }> {
    const cluster = currentCluster(this.store);
    if (!cluster?.RootCA) throw new UnavailableError('this manager has not received the cluster state yet; try again shortly');
    if (this.#cached?.hash !== cluster.RootCA.CACertHash) {
      this.#cached = { hash: cluster.RootCA.CACertHash, ca: RootCA.fromPem(cluster.RootCA.CACert, cluster.RootCA.CAKey) };
    }
    return { ca: await this.#cached.ca, cluster };
  }

  /** Check a joiner's token, issue its certificate, and record it as a node. */
  async admit(req: JoinRequest): Promise<JoinAnswer> {
    const { ca, cluster } = await this.#ca();
    const self = this.self();
    if (!self) throw new UnavailableError('this manager has no certificate yet');
    if (req.version) {
      // Refused before any certificate is issued: a node too far from the managers' version would not interoperate.
      const managers = this.store.list('nodes').filter((n) => n.Spec.Role === 'manager');
      const problem = skewProblem(req.version, managers.map((n) => ({ name: `manager ${n.ID.slice(0, 12)}`, version: n.Description?.Engine?.EngineVersion ?? '' })));
      if (problem) throw new ConflictError(`this node runs shoal ${req.version}, which cannot join: ${problem.replace(`version ${req.version} is`, 'it is')}`);
    }
    const tokens = new JoinTokens(ca.trust.digest, secretsOf(cluster));
    const issued = await admit({ ca, clusterId: cluster.ID, tokens, lifetimeMs: certLifetimeMs(cluster) }, req);
    const addr = req.advertiseAddr ?? '';
    const node: Node = {
      ID: issued.nodeId,
      Version: { Index: 0 },
      CreatedAt: '',
      UpdatedAt: '',
      Spec: { Role: issued.role, Availability: 'active', Labels: {} },
      Description: { Hostname: '', Platform: { Architecture: '', OS: '' }, Resources: { NanoCPUs: 0, MemoryBytes: 0 }, Engine: { EngineVersion: '', Plugins: [] }, TLSInfo: tlsInfoOf(issued, ca) },
      Status: { State: 'unknown', Addr: addr.replace(/:\d+$/, '') },
      ...(addr ? { AdvertiseAddr: addr } : {}),
      ...(issued.role === 'manager' ? { ManagerStatus: { Leader: false, Reachability: 'unknown' as const, Addr: addr } } : {}),
    };
    await this.store.update((tx) => tx.create('nodes', node));
    return { clusterId: cluster.ID, rootCert: ca.trust.pem, managerCert: self.certPem, cert: issued.certPem };
  }

  /** A fresh certificate for an authenticated node, with its role as the store now holds it. */
  async renew(peer: NodeIdentity, publicKey: Uint8Array): Promise<NodeIdentity> {
    const { ca, cluster } = await this.#ca();
    if ((cluster.RemovedNodes ?? []).includes(peer.nodeId)) throw new ConflictError(`node ${peer.nodeId} was removed from the cluster`);
    const node = this.store.get('nodes', peer.nodeId);
    if (!node) throw new NotFoundError(`node ${peer.nodeId} is not a member of this cluster`);
    const id = await issueNodeCert(ca, { nodeId: peer.nodeId, role: node.Spec.Role, clusterId: cluster.ID, publicKey, lifetimeMs: certLifetimeMs(cluster) });
    void recordTlsInfo(this.store, peer.nodeId, tlsInfoOf(id, ca));
    return id;
  }
}

/**
 * The cluster's `Spec.CAConfig.NodeCertExpiry` (ns) in ms, when it holds an acceptable one (at
 * least an hour, or the test-only minimum of SHOAL_TEST_MIN_CERT_EXPIRY); else the default.
 */
export function certLifetimeMs(cluster: Cluster): number | undefined {
  return nodeCertLifetimeMs(cluster.Spec.CAConfig?.NodeCertExpiry);
}

/**
 * What GET /nodes shows of a node's current certificate, in `Description.TLSInfo`: Docker's
 * `TrustRoot`, `CertIssuerSubject`; ours: `CertSerial`, `CertNotBefore`, `CertNotAfter` (RFC 3339),
 * `PeerID` (the libp2p peer id the certificate binds, by which gossip knows who announced what).
 */
export function tlsInfoOf(id: NodeIdentity, ca: RootCA): NonNullable<NodeDescription['TLSInfo']> {
  return {
    TrustRoot: ca.trust.pem,
    // Docker's shape: DER bytes, base64 in JSON (the docker CLI refuses any other string).
    CertIssuerSubject: Buffer.from(ca.certificate.subjectName.toArrayBuffer()).toString('base64'),
    CertIssuerPublicKey: Buffer.from(ca.certificate.publicKey.rawData).toString('base64'),
    CertSerial: id.serial ?? '',
    CertNotBefore: new Date(id.notBefore).toISOString(),
    CertNotAfter: new Date(id.notAfter).toISOString(),
    PeerID: id.peerId,
  };
}

/** Record a node's new certificate on its node object (best effort: a lost write waits for the next renewal). */
export async function recordTlsInfo(store: MemoryStore, nodeId: string, info: NonNullable<NodeDescription['TLSInfo']>): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await store.update((tx) => {
        const n = tx.get('nodes', nodeId);
        if (n) tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: info } });
      });
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) return;
    }
  }
}

/** setTimeout's longest delay; a renewal further away is waited for in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long to wait before renewing a certificate valid from `notBefore` to `notAfter`: until a
 * point between 50 % and 80 % of its life (`rand` picks it), at once when that has passed.
 */
export function renewalDelayMs(notBefore: number, notAfter: number, now: number, rand: () => number): number {
  return Math.max(0, renewalTime(notBefore, notAfter, rand) - now);
}
