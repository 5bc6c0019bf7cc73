/**
 * The cluster's root of trust. `ClusterTrust` is the pinned root certificate every node holds;
 * `RootCA` adds the signing key, which only managers hold. The root is either made here (ECDSA P-256,
 * 20 years) or an external one given as certificate + key PEM (`--external-ca cert,key`).
 */
import { createPrivateKey } from 'node:crypto';
import { CA_ALGORITHM, CertificateError, parseCertificate, randomSerial, toBase36, x509 } from './x509.ts';

export const ROOT_LIFETIME_MS = 20 * 365 * 24 * 3600 * 1000;
/** Clock skew tolerated between hosts: certificates start this much before they are made. */
export const BACKDATE_MS = 5 * 60 * 1000;

export class ClusterTrust {
  private constructor(
    /** The roots trusted, the cluster's current one first; two while a root rotation is under way. */
    readonly roots: readonly x509.X509Certificate[],
    /** Each root's SHA-256 of its DER, base 36, 50 characters, in order. */
    readonly digests: readonly string[],
  ) {}

  /** The current root's digest: the one in join tokens. */
  get digest(): string {
    return this.digests[0]!;
  }

  /** One root, or a bundle of them (the current root first), as PEM. */
  static async fromPem(pem: string, what = 'the root CA certificate'): Promise<ClusterTrust> {
    const blocks = splitPem(pem);
    if (blocks.length === 0) throw new CertificateError(`${what} holds no PEM certificate`);
    if (blocks.length > MAX_TRUSTED_ROOTS) throw new CertificateError(`${what} holds ${blocks.length} certificates; at most ${MAX_TRUSTED_ROOTS} roots are trusted at once`);
    const roots = blocks.map((b, i) => {
      const root = parseCertificate(b, blocks.length > 1 ? `${what} (certificate ${i + 1})` : what);
      const bc = root.getExtension(x509.BasicConstraintsExtension);
      if (!bc?.ca) throw new CertificateError(`${what} is not a CA certificate (no basicConstraints CA:true)`);
      return root;
    });
    return new ClusterTrust(roots, await Promise.all(roots.map(certDigest)));
  }

  /** The cluster's current root (the one join tokens name). */
  get root(): x509.X509Certificate {
    return this.roots[0]!;
  }

  get pem(): string {
    return this.roots.map((r) => r.toString('pem')).join('\n') + '\n';
  }
}

/** During a rotation a node trusts the old and the new root; never more than a few. */
export const MAX_TRUSTED_ROOTS = 4;

/** The PEM certificate blocks of a bundle, in order. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/** SHA-256 of a certificate's DER encoding in base 36 (50 characters). */
export async function certDigest(cert: x509.X509Certificate): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', cert.rawData));
  return toBase36(d, 50);
}

export interface CreateRootOptions {
  now?: number;
  lifetimeMs?: number;
  /** Shown in the root's subject, for people reading certificates; not relied on. */
  clusterId?: string;
}

export class RootCA {
  private constructor(
    readonly trust: ClusterTrust,
    readonly signingKey: CryptoKey,
  ) {}

  get certificate(): x509.X509Certificate {
    return this.trust.root;
  }

  /** A new self-signed root: ECDSA P-256, 20 years by default. */
  static async create(opts: CreateRootOptions = {}): Promise<RootCA> {
    const now = opts.now ?? Date.now();
    const keys = (await crypto.subtle.generateKey(CA_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const name = opts.clusterId ? `CN=shoal root CA, O=${opts.clusterId}` : 'CN=shoal root CA';
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + (opts.lifetimeMs ?? ROOT_LIFETIME_MS)),
      keys,
      signingAlgorithm: CA_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    }, crypto);
    return new RootCA(await ClusterTrust.fromPem(cert.toString('pem')), keys.privateKey);
  }

  /**
   * An external root: its certificate and private key as PEM (PKCS#8 or SEC1 "EC PRIVATE KEY").
   * Must be a CA, ECDSA P-256, valid now, and the key must belong to the certificate.
   */
  static async fromPem(certPem: string, keyPem: string, opts: { now?: number; certWhat?: string; keyWhat?: string } = {}): Promise<RootCA> {
    const what = opts.certWhat ?? 'the external CA certificate';
    const keyWhat = opts.keyWhat ?? 'the external CA key';
    const trust = await ClusterTrust.fromPem(certPem, what);
    if (trust.roots.length !== 1) throw new CertificateError(`${what} holds ${trust.roots.length} certificates: give the one root CA certificate`);
    const cert = trust.root;
    const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string };
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
      throw new CertificateError(`${what} has a ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''} key; shoal needs an ECDSA P-256 CA: make one with "openssl ecparam -name prime256v1"`);
    }
    const now = opts.now ?? Date.now();
    if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) {
      throw new CertificateError(`${what} is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not now: use a current CA`);
    }
    let pkcs8: Uint8Array<ArrayBuffer>;
    try {
      pkcs8 = new Uint8Array(createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' }));
    } catch (err) {
      throw new CertificateError(`${keyWhat} is not a readable PEM private key (${err instanceof Error ? err.message : String(err)})`);
    }
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey('pkcs8', pkcs8, CA_ALGORITHM, true, ['sign']);
    } catch {
      throw new CertificateError(`${keyWhat} is not an ECDSA P-256 private key`);
    }
    const probe = crypto.getRandomValues(new Uint8Array(32));
    const sig = await crypto.subtle.sign(CA_ALGORITHM, key, probe);
    const pub = await cert.publicKey.export(CA_ALGORITHM, ['verify'], crypto);
    if (!(await crypto.subtle.verify(CA_ALGORITHM, pub, sig, probe))) {
      throw new CertificateError(`${keyWhat} does not belong to ${what}: give the key of that certificate`);
    }
    return new RootCA(trust, key);
  }

  /**
   * `other`'s subject and public key, signed by this root: an intermediate through which a node
   * that trusts only this root accepts certificates issued by `other` (swarmkit's cross-signed
   * root, the bridge of a root rotation). Valid as long as `other`, within this root's life.
   */
  async crossSign(other: x509.X509Certificate, opts: { now?: number } = {}): Promise<x509.X509Certificate> {
    const now = opts.now ?? Date.now();
    const notAfter = Math.min(other.notAfter.getTime(), this.certificate.notAfter.getTime());
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: other.subjectName,
      issuer: this.certificate.subjectName,
      notBefore: new Date(Math.max(now - BACKDATE_MS, this.certificate.notBefore.getTime())),
      notAfter: new Date(notAfter),
      publicKey: other.publicKey,
      signingKey: this.signingKey,
      signingAlgorithm: CA_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    }, crypto);
  }

  /** The certificate and key as PEM, to hand to another manager or write to disk (mode 0600). */
  async toPem(): Promise<{ certPem: string; keyPem: string }> {
    const der = new Uint8Array(await crypto.subtle.exportKey('pkcs8', this.signingKey));
    const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
    return { certPem: this.trust.pem, keyPem: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n` };
  }
}
