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

export async function loadOrCreateNodeKey(dataDir: string): Promise<Ed25519PrivateKey> {
  const file = join(dataDir, NODE_KEY_FILE);
  if (existsSync(file)) {
    let key;
    try {
      key = privateKeyFromProtobuf(new Uint8Array(readFileSync(file)));
    } catch (err) {
      throw new NodeKeyError(`${file} is not a readable node key (${err instanceof Error ? err.message : String(err)}): restore it from a backup, or remove it and rejoin the cluster as a new node`);
    }
    if (key.type !== 'Ed25519') throw new NodeKeyError(`${file} holds a ${key.type} key; a shoal node key is Ed25519: remove it and rejoin as a new node`);
    return key;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = await generateKeyPair('Ed25519');
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, privateKeyToProtobuf(key), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return key;
}
