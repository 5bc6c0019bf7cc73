/**
 * The node's Ed25519 key: its libp2p identity and the subject key of its cluster certificate. Kept in
 * `<data-dir>/node.key` (libp2p's protobuf key encoding, mode 0600), made on first start.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { ShoalError } from '../lib/errors.ts';

export const NODE_KEY_FILE = 'node.key';

export class NodeKeyError extends ShoalError {}

/** How the key's bytes reach the file: in the clear by default; sealed on an autolocked manager (src/daemon/keys-at-rest.ts). */
export interface NodeKeyStore {
  /** The protobuf bytes from the file's bytes. */
  read(file: string, bytes: Uint8Array): Uint8Array;
  /** Writes the protobuf bytes to `file` (0600, atomically). */
  write(file: string, plain: Uint8Array): void;
}

const clearStore: NodeKeyStore = {
  read: (_file, bytes) => bytes,
  write(file, plain) {
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, plain, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  },
};

export async function loadOrCreateNodeKey(dataDir: string, store: NodeKeyStore = clearStore): Promise<Ed25519PrivateKey> {
  const file = join(dataDir, NODE_KEY_FILE);
  if (existsSync(file)) {
    const bytes = store.read(file, new Uint8Array(readFileSync(file)));
    let key;
    try {
      key = privateKeyFromProtobuf(new Uint8Array(bytes));
    } catch (err) {
      throw new NodeKeyError(`${file} is not a readable node key (${err instanceof Error ? err.message : String(err)}): restore it from a backup, or remove it and rejoin the cluster as a new node`);
    }
    if (key.type !== 'Ed25519') throw new NodeKeyError(`${file} holds a ${key.type} key; a shoal node key is Ed25519: remove it and rejoin as a new node`);
    return key;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = await generateKeyPair('Ed25519');
  store.write(file, privateKeyToProtobuf(key));
  return key;
}
