/**
 * Certificates for the admin API over TCP (mutual TLS, Docker's `--tlsverify` conventions), issued by
 * the cluster's root CA. A client certificate binds CN = the user's name, OU = its API role
 * (`admin` or `read-only`, never a node role, so a node's certificate is no API credential), and
 * O = the cluster id. Its key is ECDSA P-256, made by whoever asks (the CLI): only the public key
 * travels. The server certificate is a manager's, for the addresses the API listens on.
 */
import { InvalidArgumentError } from '../../lib/errors.ts';
import { backdateMs } from './expiry.ts';
import { BACKDATE_MS, type RootCA } from './root.ts';
import { CA_ALGORITHM, CertificateError, parseCertificate, randomSerial, x509 } from './x509.ts';

export type ClientRole = 'admin' | 'read-only';
export const CLIENT_ROLES: readonly ClientRole[] = ['admin', 'read-only'];
/** A bundle's default lifetime, as node certificates. */
export const CLIENT_CERT_LIFETIME_MS = 90 * 24 * 3600 * 1000;
/** At most as long as a node certificate may be made to live. */
export const MAX_CLIENT_CERT_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;
/** Names go into the subject: no `,` `=` `+` or spaces that could forge another field. */
export const CLIENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface ClientIdentity {
  name: string;
  role: ClientRole;
  clusterId: string;
  /** Lowercase hex, as the store keeps it. */
  serial: string;
  notBefore: number;
  notAfter: number;
}

export interface ClientCertRequest {
  name: string;
  role: ClientRole;
  clusterId: string;
  /** The client's public key, SubjectPublicKeyInfo PEM (ECDSA P-256). */
  publicKeyPem: string;
  lifetimeMs?: number;
  now?: number;
}

export async function issueClientCert(ca: RootCA, req: ClientCertRequest): Promise<ClientIdentity & { certPem: string }> {
  if (!CLIENT_NAME_PATTERN.test(req.name)) throw new InvalidArgumentError(`name "${req.name.slice(0, 80)}": expected 1-64 letters, digits or "._@-", starting with a letter or digit`);
  if (!CLIENT_ROLES.includes(req.role)) throw new InvalidArgumentError(`role "${String(req.role).slice(0, 40)}": expected admin or read-only`);
  const lifetimeMs = req.lifetimeMs ?? CLIENT_CERT_LIFETIME_MS;
  if (!(lifetimeMs > 0 && lifetimeMs <= MAX_CLIENT_CERT_LIFETIME_MS)) throw new InvalidArgumentError('expiry: expected a positive duration of at most 10 years');
  const publicKey = await importClientKey(req.publicKeyPem);
  const now = req.now ?? Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${req.name}, OU=${req.role}, O=${req.clusterId}`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - backdateMs(lifetimeMs, BACKDATE_MS)),
    notAfter: new Date(now + lifetimeMs),
    publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: CA_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  }, crypto);
  return { ...identityOf(cert, req.name, req.role, req.clusterId), certPem: cert.toString('pem') };
}

async function importClientKey(pem: string): Promise<CryptoKey> {
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) throw new InvalidArgumentError('PublicKey: expected a PEM "PUBLIC KEY" (SubjectPublicKeyInfo)');
  try {
    return await crypto.subtle.importKey('spki', Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'), CA_ALGORITHM, true, ['verify']);
  } catch {
    throw new InvalidArgumentError('PublicKey: not an ECDSA P-256 public key');
  }
}

function identityOf(cert: x509.X509Certificate, name: string, role: ClientRole, clusterId: string): ClientIdentity {
  return { name, role, clusterId, serial: cert.serialNumber.toLowerCase(), notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() };
}

/**
 * Who a client certificate the TLS layer already verified against the root says its holder is.
 * Throws CertificateError naming what makes it no API credential (a node's certificate, another
 * cluster's, expired since the connection was made).
 */
export function readClientCert(der: Uint8Array | string, opts: { clusterId: string; now?: number }): ClientIdentity {
  const what = 'the client certificate';
  const cert = parseCertificate(der, what);
  if (cert.getExtension(x509.BasicConstraintsExtension)?.ca) throw new CertificateError(`${what} is a CA certificate`);
  const one = (field: string) => {
    const v = cert.subjectName.getField(field);
    if (v.length !== 1) throw new CertificateError(`${what} has ${v.length} ${field} fields in its subject, expected one`);
    return v[0]!;
  };
  const name = one('CN');
  const role = one('OU') as ClientRole;
  const clusterId = one('O');
  if (!CLIENT_ROLES.includes(role)) throw new CertificateError(`${what} of "${name.slice(0, 64)}" is not a client bundle (role "${role.slice(0, 40)}"): make one with "shoal ca client-bundle"`);
  if (clusterId !== opts.clusterId) throw new CertificateError(`${what} of "${name.slice(0, 64)}" belongs to cluster ${clusterId.slice(0, 80)}, not to this one (${opts.clusterId})`);
  const now = opts.now ?? Date.now();
  if (now > cert.notAfter.getTime()) throw new CertificateError(`${what} of "${name}" expired at ${cert.notAfter.toISOString()}: make a new bundle with "shoal ca client-bundle"`);
  if (now < cert.notBefore.getTime()) throw new CertificateError(`${what} of "${name}" is not valid before ${cert.notBefore.toISOString()}: check the clocks`);
  return identityOf(cert, name, role, clusterId);
}

/** A server certificate and its key (PEM, PKCS#8), for the addresses `hosts` (IPs or DNS names). */
export async function issueApiServerCert(ca: RootCA, opts: { clusterId: string; nodeId: string; hosts: string[]; lifetimeMs?: number; now?: number }): Promise<{ certPem: string; keyPem: string; notBefore: number; notAfter: number }> {
  const keys = (await crypto.subtle.generateKey(CA_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await serverCert(ca, keys.publicKey, 'shoal admin API', opts);
  const der = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: cert.toString('pem'), keyPem: pemOf('PRIVATE KEY', der), notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() };
}

/**
 * A server certificate for a key another host made (a worker's `--metrics-addr` listener: only its
 * public key, SubjectPublicKeyInfo PEM, ECDSA P-256, travels), for `hosts`.
 */
export async function issueServerCertFor(ca: RootCA, opts: { clusterId: string; publicKeyPem: string; hosts: string[]; lifetimeMs?: number; now?: number }): Promise<{ certPem: string; notBefore: number; notAfter: number }> {
  const cert = await serverCert(ca, await importClientKey(opts.publicKeyPem), 'shoal metrics', opts);
  return { certPem: cert.toString('pem'), notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() };
}

async function serverCert(ca: RootCA, publicKey: CryptoKey, cn: string, opts: { clusterId: string; hosts: string[]; lifetimeMs?: number; now?: number }): Promise<x509.X509Certificate> {
  const now = opts.now ?? Date.now();
  const lifetimeMs = opts.lifetimeMs ?? CLIENT_CERT_LIFETIME_MS;
  const names = [...new Set(opts.hosts)].map((h) => (isIp(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${cn}, OU=api-server, O=${opts.clusterId}`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - backdateMs(lifetimeMs, BACKDATE_MS)),
    notAfter: new Date(now + lifetimeMs),
    publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: CA_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  }, crypto);
}

function isIp(h: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(':');
}

export function pemOf(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
