/**
 * A backup's payload sealed with the cluster's unlock key when autolock is on: the backup holds
 * the root CA's key and every secret, and with autolock the operator asked that none of it be
 * readable without that key. AES-256-GCM; the key is derived with HKDF-SHA256 from the unlock key
 * and a random salt (the unlock key is random already: a slow KDF would add nothing), and the
 * file's prefix and header are the associated data, so an edited header fails the tag as well.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../lib/errors.ts';

/** What the header records of the sealing (no secret): enough to derive the key again. */
export interface Sealing {
  Algorithm: 'AES-256-GCM';
  KDF: 'HKDF-SHA256';
  /** base64 */
  Salt: string;
  /** base64, 12 bytes */
  Nonce: string;
}

const INFO = Buffer.from('shoal backup v1');
const TAG_BYTES = 16;

function deriveKey(unlockKey: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(unlockKey, 'utf8'), salt, INFO, 32));
}

export function sealPayload(unlockKey: string): { sealing: Sealing; seal(plain: Uint8Array, aad: Uint8Array): Buffer } {
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  return {
    sealing: { Algorithm: 'AES-256-GCM', KDF: 'HKDF-SHA256', Salt: salt.toString('base64'), Nonce: nonce.toString('base64') },
    seal(plain, aad) {
      const c = createCipheriv('aes-256-gcm', deriveKey(unlockKey, salt), nonce);
      c.setAAD(aad);
      return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    },
  };
}

export function openPayload(s: Sealing, unlockKey: string, sealed: Uint8Array, aad: Uint8Array, name: string): Buffer {
  if (s.Algorithm !== 'AES-256-GCM' || s.KDF !== 'HKDF-SHA256') {
    throw new InvalidArgumentError(`${name} is sealed with ${s.Algorithm}/${s.KDF}, which this shoal does not know`);
  }
  if (!/^SWMKEY-1-/.test(unlockKey)) {
    throw new InvalidArgumentError(`--unlock-key: "${unlockKey.slice(0, 12)}…" is not an unlock key (they begin with SWMKEY-1-)`);
  }
  const buf = Buffer.from(sealed);
  if (buf.length < TAG_BYTES) throw new InvalidArgumentError(`${name} is damaged: its sealed payload is shorter than its tag`);
  const d = createDecipheriv('aes-256-gcm', deriveKey(unlockKey, Buffer.from(s.Salt, 'base64')), Buffer.from(s.Nonce, 'base64'));
  d.setAAD(aad);
  d.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(buf.subarray(0, buf.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new InvalidArgumentError(`--unlock-key does not open ${name}: it is not the unlock key the cluster had when the backup was taken (a key rotated since opens only later backups)`);
  }
}
