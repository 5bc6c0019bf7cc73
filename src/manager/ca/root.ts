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
    readonly root: x509.X509Certificate,
    /** SHA-256 of the root certificate's DER, base 36, 50 characters: the digest in join tokens. */
    readonly digest: string,
  ) {}

  static async fromPem(pem: string, what = 'the root CA certificate'): Promise<ClusterTrust> {
    const root = parseCertificate(pem, what);
    const bc = root.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) throw new CertificateError(`${what} is not a CA certificate (no basicConstraints CA:true)`);
    return new ClusterTrust(root, await certDigest(root));
  }

  get pem(): string {
    return this.root.toString('pem');
  }
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
  static async fromPem(certPem: string, keyPem: string, opts: { now?: number } = {}): Promise<RootCA> {
    const trust = await ClusterTrust.fromPem(certPem, 'the external CA certificate');
    const cert = trust.root;
    const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string };
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
      throw new CertificateError(`the external CA certificate has a ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''} key; shoal needs an ECDSA P-256 CA: make one with "openssl ecparam -name prime256v1"`);
    }
    const now = opts.now ?? Date.now();
    if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) {
      throw new CertificateError(`the external CA certificate is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not now: use a current CA`);
    }
    let pkcs8: Uint8Array<ArrayBuffer>;
    try {
      pkcs8 = new Uint8Array(createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' }));
    } catch (err) {
      throw new CertificateError(`the external CA key is not a readable PEM private key (${err instanceof Error ? err.message : String(err)})`);
    }
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey('pkcs8', pkcs8, CA_ALGORITHM, true, ['sign']);
    } catch {
      throw new CertificateError('the external CA key is not an ECDSA P-256 private key');
    }
    const probe = crypto.getRandomValues(new Uint8Array(32));
    const sig = await crypto.subtle.sign(CA_ALGORITHM, key, probe);
    const pub = await cert.publicKey.export(CA_ALGORITHM, ['verify'], crypto);
    if (!(await crypto.subtle.verify(CA_ALGORITHM, pub, sig, probe))) {
      throw new CertificateError('the external CA key does not belong to the external CA certificate: give the key of that certificate');
    }
    return new RootCA(trust, key);
  }

  /** The certificate and key as PEM, to hand to another manager or write to disk (mode 0600). */
  async toPem(): Promise<{ certPem: string; keyPem: string }> {
    const der = new Uint8Array(await crypto.subtle.exportKey('pkcs8', this.signingKey));
    const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
    return { certPem: this.trust.pem, keyPem: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n` };
  }
}
