/**
 * Node certificates. The subject key is the node's Ed25519 key, which is also its libp2p identity, so
 * a peer that completed the transport handshake has proved it holds the certificate's key. The
 * certificate binds: CN = node id, OU = role, O = cluster id, and a URI SAN `urn:shoal:peer:<peer id>`.
 */
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { NodeRole } from '../../types/objects.ts';
import { backdateMs } from './expiry.ts';
import { BACKDATE_MS, type ClusterTrust, type RootCA, splitPem } from './root.ts';
import { CA_ALGORITHM, CertificateError, bytesEqual, ed25519RawKey, ed25519Spki, parseCertificate, randomSerial, x509 } from './x509.ts';

export const NODE_CERT_LIFETIME_MS = 90 * 24 * 3600 * 1000;
const PEER_URI_PREFIX = 'urn:shoal:peer:';
const ROLES: readonly NodeRole[] = ['manager', 'worker'];
/** Node and cluster ids: what `newId()` makes, with room for hand-picked names. */
const ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** Who a verified certificate says its holder is. */
export interface NodeIdentity {
  nodeId: string;
  peerId: string;
  role: NodeRole;
  clusterId: string;
  notBefore: number;
  notAfter: number;
  certPem: string;
  /** The certificate's serial number, hex. */
  serial?: string;
}

export interface IssueOptions {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  /** The node's raw 32-byte Ed25519 public key (its libp2p identity). */
  publicKey: Uint8Array;
  now?: number;
  lifetimeMs?: number;
  /**
   * PEM of the intermediate to present with the certificate: during a root rotation, the new root
   * cross-signed by the old, so that nodes still trusting only the old root accept it.
   */
  intermediatePem?: string;
}

export async function issueNodeCert(ca: RootCA, opts: IssueOptions): Promise<NodeIdentity> {
  if (!ID_PATTERN.test(opts.nodeId)) throw new CertificateError(`node id "${opts.nodeId.slice(0, 80)}" is not a valid id (lowercase letters, digits, "._-", at most 64)`);
  if (!ID_PATTERN.test(opts.clusterId)) throw new CertificateError(`cluster id "${opts.clusterId.slice(0, 80)}" is not a valid id`);
  if (!ROLES.includes(opts.role)) throw new CertificateError(`role "${String(opts.role)}" is neither manager nor worker`);
  const now = opts.now ?? Date.now();
  const lifetimeMs = opts.lifetimeMs ?? NODE_CERT_LIFETIME_MS;
  const notBefore = now - backdateMs(lifetimeMs, BACKDATE_MS);
  const notAfter = now + lifetimeMs;
  const peerId = peerIdFromPublicKey(publicKeyFromRaw(opts.publicKey)).toString();
  const publicKey = await crypto.subtle.importKey('spki', ed25519Spki(opts.publicKey), { name: 'Ed25519' }, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${opts.nodeId}, OU=${opts.role}, O=${opts.clusterId}`,
    issuer: ca.certificate.subject,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: CA_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: PEER_URI_PREFIX + peerId }]),
    ],
  }, crypto);
  const certPem = cert.toString('pem') + (opts.intermediatePem ? `\n${opts.intermediatePem.trim()}\n` : '');
  return { nodeId: opts.nodeId, peerId, role: opts.role, clusterId: opts.clusterId, notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), certPem, serial: cert.serialNumber };
}

export interface VerifyOptions {
  trust: ClusterTrust;
  clusterId: string;
  /** The raw Ed25519 key the peer proved on the transport; the certificate must carry exactly it. */
  peerPublicKey?: Uint8Array;
  /** Accept only these roles. */
  roles?: readonly NodeRole[];
  now?: number;
  /** Names the certificate in errors, e.g. `the certificate of peer 12D3…`. */
  what?: string;
}

/** Checks a node certificate against the pinned root. Throws CertificateError naming what is wrong. */
export async function verifyNodeCert(pem: string, opts: VerifyOptions): Promise<NodeIdentity> {
  const what = opts.what ?? 'the node certificate';
  const blocks = splitPem(pem);
  if (blocks.length > MAX_CHAIN) throw new CertificateError(`${what} comes with ${blocks.length - 1} intermediates; at most ${MAX_CHAIN - 1} is accepted`);
  const cert = parseCertificate(blocks[0] ?? pem, what);
  const intermediates = blocks.slice(1).map((b, i) => parseCertificate(b, `the intermediate ${i + 1} of ${what}`));
  const now = opts.now ?? Date.now();
  await checkChain(cert, intermediates, opts.trust, now, what);
  if (now < cert.notBefore.getTime()) throw new CertificateError(`${what} is not valid before ${cert.notBefore.toISOString()}: check the clocks of both hosts`);
  if (now > cert.notAfter.getTime()) throw new CertificateError(`${what} expired at ${cert.notAfter.toISOString()}: the node must renew it (or rejoin with a token)`);
  if (cert.getExtension(x509.BasicConstraintsExtension)?.ca) throw new CertificateError(`${what} is a CA certificate, not a node certificate`);

  const nodeId = single(cert, 'CN', what);
  const role = single(cert, 'OU', what) as NodeRole;
  const clusterId = single(cert, 'O', what);
  if (!ROLES.includes(role)) throw new CertificateError(`${what} has role "${role.slice(0, 40)}", neither manager nor worker`);
  if (clusterId !== opts.clusterId) throw new CertificateError(`${what} belongs to cluster ${clusterId.slice(0, 80)}, not to this cluster (${opts.clusterId})`);
  if (opts.roles && !opts.roles.includes(role)) throw new CertificateError(`${what} is for a ${role}; only ${opts.roles.join(' or ')} may do this`);

  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  const raw = ed25519RawKey(cert) ?? peerKeyNamed(names.filter((n) => n.type === 'dns').map((n) => n.value));
  if (!raw) throw new CertificateError(`${what} neither carries an Ed25519 key nor names a peer id (a node's key is its libp2p Ed25519 identity)`);
  const peerId = peerIdFromPublicKey(publicKeyFromRaw(raw)).toString();
  const uris = names.filter((n) => n.type === 'url').map((n) => n.value);
  if (ed25519RawKey(cert) && !uris.includes(PEER_URI_PREFIX + peerId)) throw new CertificateError(`${what} does not name peer ${peerId}, the peer its key belongs to`);
  if (opts.peerPublicKey && !bytesEqual(raw, opts.peerPublicKey)) {
    const presenter = peerIdFromPublicKey(publicKeyFromRaw(opts.peerPublicKey)).toString();
    throw new CertificateError(`${what} belongs to peer ${peerId}, but was presented by peer ${presenter}`);
  }
  const certPem = [cert, ...intermediates].map((c) => c.toString('pem')).join('\n') + (intermediates.length ? '\n' : '');
  return { nodeId, peerId, role, clusterId, notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), certPem, serial: cert.serialNumber };
}

/**
 * An external CA (cfssl) signs a certificate request, which a node's Ed25519 libp2p key cannot make
 * for it: the manager then asks for a certificate naming the node's peer id as a DNS name (an
 * Ed25519 peer id holds its public key), and the certificate's own key is a throwaway nobody uses.
 * The binding is the same: the CA says which peer is which node, and the peer proves its key on the
 * transport.
 */
function peerKeyNamed(dnsNames: string[]): Uint8Array | null {
  for (const name of dnsNames) {
    if (!name.startsWith('12D3Koo')) continue;
    try {
      const key = peerIdFromString(name).publicKey;
      if (key?.type === 'Ed25519') return key.raw;
    } catch {}
  }
  return null;
}

/** A leaf and at most one intermediate (the cross-signed root of a rotation). */
const MAX_CHAIN = 2;

async function signedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true }, crypto);
  } catch {
    return false;
  }
}

function validNow(c: x509.X509Certificate, now: number): boolean {
  return now >= c.notBefore.getTime() && now <= c.notAfter.getTime();
}

/**
 * The leaf chains to a trusted root: signed by one directly, or by an intermediate it came with
 * (a CA, valid now) that a trusted root signed. Several roots are trusted during a rotation.
 */
async function checkChain(cert: x509.X509Certificate, intermediates: x509.X509Certificate[], trust: ClusterTrust, now: number, what: string): Promise<void> {
  let root: x509.X509Certificate | null = null;
  for (const r of trust.roots) if (await signedBy(cert, r)) { root = r; break; }
  if (!root) {
    for (const i of intermediates) {
      if (!i.getExtension(x509.BasicConstraintsExtension)?.ca || !validNow(i, now) || !(await signedBy(cert, i))) continue;
      for (const r of trust.roots) if (await signedBy(i, r)) { root = r; break; }
      if (root) break;
    }
  }
  if (!root) {
    const direct = trust.roots.some((r) => r.subject === cert.issuer) || intermediates.some((i) => i.subject === cert.issuer);
    if (!direct) throw new CertificateError(`${what} was issued by "${cert.issuer}", not by this cluster's root CA "${trust.root.subject}"`);
    throw new CertificateError(`${what} is not signed by this cluster's root CA (digest ${trust.digest})`);
  }
  if (!validNow(root, now)) {
    throw new CertificateError(`this cluster's root CA is valid from ${root.notBefore.toISOString()} to ${root.notAfter.toISOString()}, not now: check this host's clock, or rotate the root CA`);
  }
}

function single(cert: x509.X509Certificate, field: string, what: string): string {
  const values = cert.subjectName.getField(field);
  if (values.length !== 1) throw new CertificateError(`${what} has ${values.length} ${field} fields in its subject, expected one`);
  return values[0]!;
}

/**
 * When to renew a certificate: at a random point between 50 % and 80 % of its lifetime, so that a
 * fleet whose certificates were issued together does not renew all at once. `rand` returns [0, 1).
 */
export function renewalTime(notBefore: number, notAfter: number, rand: () => number): number {
  const r = Math.min(Math.max(rand(), 0), 1);
  return notBefore + Math.floor((notAfter - notBefore) * (0.5 + 0.3 * r));
}
