/**
 * A manager's keys at rest: its raft data encryption key (DEK, which seals the WAL and snapshots,
 * src/raft-host/wal-cipher.ts) in `<data-dir>/dek.json`, and its node key (`node.key`, the libp2p
 * and certificate key). Without autolock both are in the clear, mode 0600, as Swarm keeps them: the
 * DEK protects copies of `raft/` (backups, a leaked volume), not a root user of this host. With
 * autolock (the cluster's `UnlockKey`) both are sealed under a key derived from the unlock key
 * (src/lib/unlock-key.ts), and a restarted manager cannot read its log or prove who it is until
 * someone gives it the key (`swarm unlock`).
 *
 * dek.json is `{ Version: 1, DEK }` (base64) or `{ Version: 1, Sealed }`, the sealed JSON of the
 * DEK and a copy of the node key. The copy makes dek.json alone enough to unlock: a re-wrap writes
 * dek.json first and node.key second, so a crash between them leaves a node.key under the
 * previous key, which the copy stands in for (and the next re-wrap rewrites).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ShoalError } from '../lib/errors.ts';
import { isSealed, openWithUnlockKey, sealWithUnlockKey } from '../lib/unlock-key.ts';
import { NODE_KEY_FILE, NodeKeyError, type NodeKeyStore } from '../net/identity.ts';

export const DEK_FILE = 'dek.json';
const DEK_PURPOSE = 'shoal raft data key';
const NODE_KEY_PURPOSE = 'shoal node key';

/** Docker's answer (503) to every request but unlock on a locked manager. */
export const SWARM_LOCKED_MESSAGE = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

interface Bundle { DEK: string; NodeKey?: string }

/**
 * Durably, before anything is sealed with what it holds: a DEK lost in a crash would leave a raft
 * log nobody can read. Temp file, fsync, rename, directory fsync.
 */
function writePrivate(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600); // a leftover temp file keeps its old mode otherwise
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export class AtRestKeys {
  #dek: Buffer | null = null;
  #nodeKey: Uint8Array | null = null;
  /** The key dek.json is sealed under, once known (null: in the clear, or not unlocked yet). */
  #unlockKey: string | null = null;
  #sealed: Buffer | null = null;

  private constructor(readonly dataDir: string) {}

  static read(dataDir: string): AtRestKeys {
    const k = new AtRestKeys(dataDir);
    const file = join(dataDir, DEK_FILE);
    if (!existsSync(file)) return k;
    let parsed: { Version?: unknown; DEK?: unknown; Sealed?: unknown };
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ShoalError(`${file} is not readable JSON (${(err as Error).message}): restore it from a backup; without it this manager's raft log cannot be read`);
    }
    if (typeof parsed.DEK === 'string') k.#dek = Buffer.from(parsed.DEK, 'base64');
    else if (typeof parsed.Sealed === 'string') k.#sealed = Buffer.from(parsed.Sealed, 'base64');
    else throw new ShoalError(`${file} holds neither a DEK nor a sealed one: restore it from a backup`);
    if (k.#dek && k.#dek.length !== 32) throw new ShoalError(`${file}: the DEK is ${k.#dek.length} bytes, expected 32`);
    return k;
  }

  /** Sealed by autolock and not unlocked yet: the manager serves only `swarm unlock`. */
  get locked(): boolean {
    return this.#sealed !== null && this.#dek === null;
  }

  /** Opens the DEK (and the node key's copy); InvalidUnlockKeyError when this key did not seal them. */
  unlock(unlockKey: string): void {
    if (!this.#sealed) return;
    const bundle = JSON.parse(openWithUnlockKey(unlockKey, DEK_PURPOSE, this.#sealed).toString('utf8')) as Bundle;
    this.#dek = Buffer.from(bundle.DEK, 'base64');
    this.#nodeKey = bundle.NodeKey ? Buffer.from(bundle.NodeKey, 'base64') : null;
    this.#unlockKey = unlockKey;
  }

  /** The DEK, made (in the clear, or sealed when wrapped later) on a manager's first start. */
  dataKey(): Buffer {
    if (this.locked) throw new ShoalError(SWARM_LOCKED_MESSAGE);
    if (!this.#dek) {
      this.#dek = randomBytes(32);
      this.#write();
    }
    return this.#dek;
  }

  /** How node.key is read and written: sealed while this manager is autolocked. */
  nodeKeyStore(): NodeKeyStore {
    return {
      read: (file, bytes) => {
        if (!isSealed(bytes)) return bytes;
        if (this.#nodeKey) return this.#nodeKey;
        if (this.#unlockKey) return openWithUnlockKey(this.#unlockKey, NODE_KEY_PURPOSE, bytes);
        throw new NodeKeyError(`${file} is sealed by autolock: unlock this manager first ("shoal swarm unlock")`);
      },
      write: (file, plain) => {
        this.#nodeKey = plain;
        if (this.#unlockKey) this.#write(); // dek.json's copy first (see the header)
        writePrivate(file, this.#unlockKey ? sealWithUnlockKey(this.#unlockKey, NODE_KEY_PURPOSE, plain) : plain);
      },
    };
  }

  /**
   * Seals both files under `unlockKey`, or writes them in the clear for null (autolock off, or
   * this host a worker: workers are never locked). Cheap enough to do at every start and change.
   */
  wrap(unlockKey: string | null): void {
    if (this.locked) throw new ShoalError(SWARM_LOCKED_MESSAGE);
    const nodeFile = join(this.dataDir, NODE_KEY_FILE);
    if (!this.#nodeKey && existsSync(nodeFile)) this.#nodeKey = this.nodeKeyStore().read(nodeFile, readFileSync(nodeFile));
    this.#unlockKey = unlockKey;
    this.#dek ??= randomBytes(32);
    this.#write();
    if (this.#nodeKey) writePrivate(nodeFile, unlockKey ? sealWithUnlockKey(unlockKey, NODE_KEY_PURPOSE, this.#nodeKey) : this.#nodeKey);
  }

  /** Sealed under this key now (what the watch compares with the cluster's). */
  get wrappedUnder(): string | null {
    return this.#unlockKey;
  }

  #write(): void {
    const file = join(this.dataDir, DEK_FILE);
    const dek = this.#dek!.toString('base64');
    if (!this.#unlockKey) {
      this.#sealed = null;
      return writePrivate(file, JSON.stringify({ Version: 1, DEK: dek }) + '\n');
    }
    const bundle: Bundle = { DEK: dek, ...(this.#nodeKey ? { NodeKey: Buffer.from(this.#nodeKey).toString('base64') } : {}) };
    this.#sealed = sealWithUnlockKey(this.#unlockKey, DEK_PURPOSE, Buffer.from(JSON.stringify(bundle)));
    writePrivate(file, JSON.stringify({ Version: 1, Sealed: this.#sealed.toString('base64') }) + '\n');
  }
}
