/**
 * The one place that loads @peculiar/x509: it needs the `reflect-metadata` polyfill loaded before it
 * (its dependency injection container checks at import time). Every call passes the runtime's own
 * WebCrypto (`crypto`) explicitly: @libp2p/tls sets x509's global provider to @peculiar/webcrypto when
 * it loads, whose CryptoKey class is not the runtime's, and we must not change that global under it.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ShoalError } from '../../lib/errors.ts';

export { x509 };

/** A certificate that is not acceptable: unparsable, not from our root, expired, wrong cluster/role/key. */
export class CertificateError extends ShoalError {
  override readonly status = 403;
}

/** The ECDSA P-256 / SHA-256 signature the cluster CA uses. */
export const CA_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

export function ed25519Spki(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  if (raw.length !== 32) throw new CertificateError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  const out = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
  out.set(ED25519_SPKI_PREFIX);
  out.set(raw, ED25519_SPKI_PREFIX.length);
  return out;
}

/** The raw 32-byte Ed25519 key of a certificate, or null when its key is of another kind. */
export function ed25519RawKey(cert: { publicKey: x509.PublicKey }): Uint8Array | null {
  const spki = new Uint8Array(cert.publicKey.rawData);
  if (spki.length !== ED25519_SPKI_PREFIX.length + 32) return null;
  for (let i = 0; i < ED25519_SPKI_PREFIX.length; i++) if (spki[i] !== ED25519_SPKI_PREFIX[i]) return null;
  return spki.slice(ED25519_SPKI_PREFIX.length);
}

export function parseCertificate(pem: string | Uint8Array, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(typeof pem === 'string' ? pem : pem.slice());
  } catch (err) {
    throw new CertificateError(`${what} is not a readable X.509 certificate (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** A positive random serial number of 16 bytes, as hex. */
export function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Big-endian bytes as base 36, left-padded to `width` characters. */
export function toBase36(bytes: Uint8Array, width: number): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let s = '';
  while (n > 0n) {
    s = BASE36[Number(n % 36n)] + s;
    n /= 36n;
  }
  return s.padStart(width, '0');
}
