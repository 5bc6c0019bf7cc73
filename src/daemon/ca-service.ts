/**
 * The cluster CA as the daemon uses it: made at `init` (or taken from --external-ca), kept in the
 * replicated store's Cluster object (certificate, digest, key) so that every manager can admit and
 * renew; and the join tokens, whose secrets also live there. Loaded on demand: x509 is not needed
 * for a one-host daemon's API to come up.
 */
import 'reflect-metadata'; // before anything loads @peculiar/x509 (its DI container checks at import time)
import { readFileSync } from 'node:fs';
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../lib/errors.ts';
import { trustPemOf } from '../manager/ca/epoch.ts';
import { admit, caEpochOf, ClusterTrust, type JoinRequest, JoinTokens, localSigner, type NodeIdentity, type NodeSigner, parseJoinToken, RootCA, renewalTime } from '../manager/ca/index.ts';
import type { x509 } from '../manager/ca/x509.ts';
import type { JoinAnswer } from '../net/join.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Cluster, ExternalCA, Node, NodeDescription, NodeRole, RootCAState } from '../types/index.ts';
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
  const externalCAs = cluster.Spec.CAConfig?.ExternalCAs ?? [];
  let root: RootCAState;
  if (cluster.RootCA) root = cluster.RootCA;
  else if (externalCa) root = await rootStateOf(await loadExternalCA(externalCa));
  else if (externalCAs.length > 0) root = await externalRootState(externalCAs);
  else root = await rootStateOf(await RootCA.create({ clusterId }));
  const { signer, trustPem } = await signingStateOf({ ...cluster, RootCA: root });
  const tokens = new JoinTokens(root.CACertHash, cluster.RootCA ? secretsOf(cluster) : undefined);
  const own = await signer.issue({ nodeId, role: 'manager', clusterId, publicKey, lifetimeMs: certLifetimeMs(cluster) });
  return {
    tlsInfo: tlsInfoOf(own, signer.issuer, trustPem),
    identity: {
      ID: clusterId,
      RootCA: root,
      JoinTokens: { Worker: tokens.token('worker'), Manager: tokens.token('manager') },
    },
    membership: { ClusterID: clusterId, Role: 'manager', RootCA: trustPem, Cert: own.certPem, Joined: false, Managers: [] },
  };
}

async function rootStateOf(ca: RootCA): Promise<RootCAState> {
  const { certPem, keyPem } = await ca.toPem();
  return { CACert: certPem, CAKey: keyPem, CACertHash: ca.trust.digest };
}

/** A root whose key an external CA holds: its certificate as given with the first server, else as the server tells. */
async function externalRootState(cas: ExternalCA[]): Promise<RootCAState> {
  const { cfsslRoot } = await import('./external-ca.ts');
  const certPem = cas[0]!.CACert ?? await cfsslRoot(cas[0]!);
  const trust = await ClusterTrust.fromPem(certPem, 'the external CA\'s root certificate');
  return { CACert: certPem, CAKey: '', CACertHash: trust.digest };
}

/** A token with a fresh secret for `role`: the old one stops working once this is stored. */
export function rotatedToken(cluster: Cluster, role: NodeRole): string {
  const digest = cluster.RootCA?.CACertHash;
  if (!digest) throw new UnavailableError('this cluster has no root CA yet (made by an earlier version): restart its leader to make one');
  const tokens = new JoinTokens(digest, secretsOf(cluster));
  return tokens.rotate(role);
}

export function secretsOf(cluster: Cluster): Record<NodeRole, string> {
  return { worker: parseJoinToken(cluster.JoinTokens.Worker).secret, manager: parseJoinToken(cluster.JoinTokens.Manager).secret };
}

/** A certificate issued to a node, with the roots the node is to trust from now on (PEM). */
export interface Issued {
  identity: NodeIdentity;
  trustPem: string;
}

/**
 * What managers sign with now: the cluster's root, or during a rotation the new root, whose
 * certificates carry the new root cross-signed by the old so that nodes still trusting only the
 * old root accept them. `trustPem`: the roots nodes are to trust (the old and the new during a
 * rotation), the strings the store holds, so that a node's TrustRoot compares equal to the cluster's.
 */
export interface SigningState {
  cluster: Cluster;
  signer: NodeSigner;
  trustPem: string;
  /** The digest in join tokens: the cluster's current root's. */
  digest: string;
}


/** The signing side of the CA, for managers: built from the store, cached per root (and rotation). */
export class ClusterCA {
  #cached: { epoch: string; state: Promise<Omit<SigningState, 'cluster'>> } | null = null;

  constructor(private readonly store: MemoryStore, private readonly self: () => NodeIdentity | null) {}

  async state(): Promise<SigningState> {
    const cluster = currentCluster(this.store);
    if (!cluster?.RootCA) throw new UnavailableError('this manager has not received the cluster state yet; try again shortly');
    const epoch = `${caEpochOf(cluster.RootCA)}|${(cluster.Spec.CAConfig?.ExternalCAs ?? []).map((e) => e.URL).join(',')}`;
    if (this.#cached?.epoch !== epoch) {
      const state = signingStateOf(cluster);
      this.#cached = { epoch, state };
      state.catch(() => {
        if (this.#cached?.state === state) this.#cached = null;
      });
    }
    return { ...(await this.#cached.state), cluster };
  }

  /** Check a joiner's token, issue its certificate, and record it as a node. */
  async admit(req: JoinRequest): Promise<JoinAnswer> {
    const { signer, cluster, trustPem, digest } = await this.state();
    const self = this.self();
    if (!self) throw new UnavailableError('this manager has no certificate yet');
    if (req.version) {
      // Refused before any certificate is issued: a node too far from the managers' version would not interoperate.
      const managers = this.store.list('nodes').filter((n) => n.Spec.Role === 'manager');
      const problem = skewProblem(req.version, managers.map((n) => ({ name: `manager ${n.ID.slice(0, 12)}`, version: n.Description?.Engine?.EngineVersion ?? '' })));
      if (problem) throw new ConflictError(`this node runs shoal ${req.version}, which cannot join: ${problem.replace(`version ${req.version} is`, 'it is')}`);
    }
    const tokens = new JoinTokens(digest, secretsOf(cluster));
    const issued = await admit({ signer, digest, clusterId: cluster.ID, tokens, lifetimeMs: certLifetimeMs(cluster) }, req);
    const addr = req.advertiseAddr ?? '';
    const node: Node = {
      ID: issued.nodeId,
      Version: { Index: 0 },
      CreatedAt: '',
      UpdatedAt: '',
      Spec: { Role: issued.role, Availability: 'active', Labels: {} },
      Description: { Hostname: '', Platform: { Architecture: '', OS: '' }, Resources: { NanoCPUs: 0, MemoryBytes: 0 }, Engine: { EngineVersion: '', Plugins: [] }, TLSInfo: tlsInfoOf(issued, signer.issuer, trustPem) },
      Status: { State: 'unknown', Addr: addr.replace(/:\d+$/, '') },
      ...(addr ? { AdvertiseAddr: addr } : {}),
      ...(issued.role === 'manager' ? { ManagerStatus: { Leader: false, Reachability: 'unknown' as const, Addr: addr } } : {}),
    };
    await this.store.update((tx) => tx.create('nodes', node));
    return { clusterId: cluster.ID, rootCert: trustPem, managerCert: self.certPem, cert: issued.certPem, managers: managerAddrs(this.store.list('nodes')) };
  }

  /** A fresh certificate for an authenticated node, with its role as the store now holds it. */
  async renew(peer: NodeIdentity, publicKey: Uint8Array): Promise<Issued> {
    const { signer, cluster, trustPem } = await this.state();
    if ((cluster.RemovedNodes ?? []).includes(peer.nodeId)) throw new ConflictError(`node ${peer.nodeId} was removed from the cluster`);
    const node = this.store.get('nodes', peer.nodeId);
    if (!node) throw new NotFoundError(`node ${peer.nodeId} is not a member of this cluster`);
    const id = await signer.issue({ nodeId: peer.nodeId, role: node.Spec.Role, clusterId: cluster.ID, publicKey, lifetimeMs: certLifetimeMs(cluster) });
    void recordTlsInfo(this.store, peer.nodeId, tlsInfoOf(id, signer.issuer, trustPem));
    return { identity: id, trustPem };
  }
}

/** The signer for the cluster's state: the rotation's new root while one is under way. */
async function signingStateOf(cluster: Cluster): Promise<Omit<SigningState, 'cluster'>> {
  const root = cluster.RootCA!;
  const rotation = root.RootRotation;
  const certPem = rotation?.CACert ?? root.CACert;
  const keyPem = rotation ? rotation.CAKey : root.CAKey;
  const intermediatePem = rotation?.CrossSignedCACert;
  let signer: NodeSigner;
  if (keyPem) {
    signer = localSigner(await RootCA.fromPem(certPem, keyPem), intermediatePem);
  } else {
    const { externalSigner } = await import('./external-ca.ts');
    signer = await externalSigner(certPem, cluster.Spec.CAConfig?.ExternalCAs ?? [], intermediatePem);
  }
  return { signer, trustPem: trustPemOf(root), digest: root.CACertHash };
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
export function tlsInfoOf(id: NodeIdentity, issuer: x509.X509Certificate, trustPem: string): NonNullable<NodeDescription['TLSInfo']> {
  return {
    TrustRoot: trustPem,
    // Docker's shape: DER bytes, base64 in JSON (the docker CLI refuses any other string).
    CertIssuerSubject: Buffer.from(issuer.subjectName.toArrayBuffer()).toString('base64'),
    CertIssuerPublicKey: Buffer.from(issuer.publicKey.rawData).toString('base64'),
    CertSerial: id.serial ?? '',
    CertNotBefore: new Date(id.notBefore).toISOString(),
    CertNotAfter: new Date(id.notAfter).toISOString(),
    PeerID: id.peerId,
  };
}

/**
 * Record a node's new certificate on its node object. Retried a few times: a root rotation ends
 * only once every node's record shows the new root, and a lost write would hold it up until the
 * node's next renewal.
 */
export async function recordTlsInfo(store: MemoryStore, nodeId: string, info: NonNullable<NodeDescription['TLSInfo']>): Promise<void> {
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      await store.update((tx) => {
        const n = tx.get('nodes', nodeId);
        if (n) tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: info } });
      });
      return;
    } catch (err) {
      if (err instanceof NotFoundError) return;
      if (!(err instanceof ConflictError)) await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
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

/** Managers' IP:PORT, leader first: where a new node finds the leader when it joined through a follower. */
export function managerAddrs(nodes: Node[]): string[] {
  const managers = nodes.filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Addr);
  managers.sort((a, b) => Number(!!b.ManagerStatus?.Leader) - Number(!!a.ManagerStatus?.Leader));
  return managers.map((n) => n.ManagerStatus!.Addr).slice(0, 64);
}
