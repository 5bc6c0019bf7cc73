// Encryption at rest of the raft log: the WAL's entry records and snapshot files are sealed with
// this manager's data encryption key (DEK), AES-256-GCM. Whole records are sealed, so whatever a
// store object holds (secrets' data, the CA key, join tokens) never reaches the disk in the clear. The
// CRC32 of a record still covers its (sealed) bytes, so a torn tail is told from damage as before;
// GCM's tag tells a record that was altered, which a recomputed CRC would not.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Set on a record's type byte when its payload is sealed; the low bits keep the record's type. */
export const SEALED_FLAG = 0x80;
/** First byte of a sealed payload: the format, so a later one can be told apart. */
const FORMAT_AES256_GCM = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;

export class WalKeyError extends Error {
  override readonly name = 'WalKeyError';
}

export interface RecordCipher {
  /** The sealed form of a record's payload; `type` (the record type) is bound to it. */
  seal(type: number, plain: Uint8Array): Uint8Array;
  /** The payload back; throws when the bytes were altered or sealed with another key. */
  open(type: number, sealed: Uint8Array): Uint8Array;
}

/**
 * A random 96-bit nonce per record: a DEK seals at most a few million records over its life here
 * (one per ready), far below the 2^32 after which random GCM nonces would risk a repeat.
 */
export function aesGcmCipher(key: Uint8Array): RecordCipher {
  if (key.length !== DATA_KEY_BYTES) throw new WalKeyError(`a raft data key is ${DATA_KEY_BYTES} bytes, got ${key.length}`);
  const k = Buffer.from(key);
  return {
    seal(type, plain) {
      const nonce = randomBytes(NONCE_BYTES);
      const c = createCipheriv('aes-256-gcm', k, nonce);
      c.setAAD(Uint8Array.of(type));
      const body = c.update(plain);
      const fin = c.final();
      const out = new Uint8Array(1 + NONCE_BYTES + body.length + fin.length + TAG_BYTES);
      out[0] = FORMAT_AES256_GCM;
      out.set(nonce, 1);
      out.set(body, 1 + NONCE_BYTES);
      out.set(fin, 1 + NONCE_BYTES + body.length);
      out.set(c.getAuthTag(), out.length - TAG_BYTES);
      return out;
    },
    open(type, sealed) {
      if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES) throw new WalKeyError('sealed record too short');
      if (sealed[0] !== FORMAT_AES256_GCM) throw new WalKeyError(`sealed record of unknown format ${sealed[0]}`);
      const d = createDecipheriv('aes-256-gcm', k, sealed.subarray(1, 1 + NONCE_BYTES));
      d.setAAD(Uint8Array.of(type));
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      try {
        const body = d.update(sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES));
        const fin = d.final();
        return fin.length ? Buffer.concat([body, fin]) : body;
      } catch {
        throw new WalKeyError('sealed record failed authentication (altered, or sealed with another data key)');
      }
    },
  };
}
