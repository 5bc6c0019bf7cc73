/**
 * Autolock's unlock key (Docker's `SWMKEY-1-<base64>`) and what it protects: small blobs (a
 * manager's raft data key, its node key) sealed under a key-encryption key derived from it.
 *
 * The KEK comes from HKDF-SHA256, not a password KDF such as scrypt: the unlock key is 32 random
 * bytes made here, never a phrase a person chose, so there is nothing for a slow KDF to stretch
 * (guessing 2^256 keys is out of reach at any speed), and scrypt would add CPU time to every
 * unlock and every re-wrap on each manager. A random salt per seal keeps two managers' (or two
 * rotations') KEKs apart even under one unlock key.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { ShoalError } from './errors.ts';

export const UNLOCK_KEY_PREFIX = 'SWMKEY-1-';
const KEY_BYTES = 32;
const MAGIC = Buffer.from('SHLSEAL1');
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_INFO = 'shoal autolock kek 1';

/** Docker's answer (401) to a key that does not open this manager's keys, or is not a key at all. */
export class InvalidUnlockKeyError extends ShoalError {
  override readonly status = 401;
  constructor(detail?: string) {
    super(`swarm could not be unlocked: invalid key provided${detail ? ` (${detail})` : ''}`);
  }
}

export function newUnlockKey(): string {
  return UNLOCK_KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64').replace(/=+$/, '');
}

/** The key's 32 bytes; a key of another shape is refused naming what is wrong with it. */
export function parseUnlockKey(key: string): Buffer {
  const k = key.trim();
  if (!k.startsWith(UNLOCK_KEY_PREFIX)) throw new InvalidUnlockKeyError(`an unlock key starts with ${UNLOCK_KEY_PREFIX}`);
  const body = k.slice(UNLOCK_KEY_PREFIX.length);
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, 'base64') : Buffer.alloc(0);
  if (bytes.length !== KEY_BYTES) throw new InvalidUnlockKeyError('not a key of the shape "shoal swarm unlock-key" shows');
  return bytes;
}

function kek(key: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, KEY_BYTES));
}

/** True for bytes made by sealWithUnlockKey. */
export function isSealed(blob: Uint8Array): boolean {
  return blob.length >= MAGIC.length && Buffer.from(blob.subarray(0, MAGIC.length)).equals(MAGIC);
}

/** `plain` sealed under the unlock key; `purpose` is bound to it, so a sealed blob cannot stand in for another. */
export function sealWithUnlockKey(unlockKey: string, purpose: string, plain: Uint8Array): Buffer {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', kek(parseUnlockKey(unlockKey), salt), nonce);
  c.setAAD(Buffer.from(purpose));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([MAGIC, salt, nonce, body, c.getAuthTag()]);
}

/** The bytes sealed; InvalidUnlockKeyError when this key did not seal them. */
export function openWithUnlockKey(unlockKey: string, purpose: string, blob: Uint8Array): Buffer {
  const head = MAGIC.length + SALT_BYTES + NONCE_BYTES;
  if (!isSealed(blob) || blob.length < head + TAG_BYTES) throw new ShoalError(`not a blob sealed by autolock (${purpose})`);
  const b = Buffer.from(blob);
  const salt = b.subarray(MAGIC.length, MAGIC.length + SALT_BYTES);
  const d = createDecipheriv('aes-256-gcm', kek(parseUnlockKey(unlockKey), salt), b.subarray(MAGIC.length + SALT_BYTES, head));
  d.setAAD(Buffer.from(purpose));
  d.setAuthTag(b.subarray(b.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(b.subarray(head, b.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new InvalidUnlockKeyError();
  }
}
