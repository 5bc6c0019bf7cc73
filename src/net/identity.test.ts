import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { NODE_KEY_FILE, NodeKeyError, loadOrCreateNodeKey } from './identity.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'shoal-key-'));
  dirs.push(d);
  return d;
}

describe('node key', () => {
  test('made once (mode 0600), the same identity on every later start', async () => {
    const dir = join(tmp(), 'data');
    const first = await loadOrCreateNodeKey(dir);
    expect(first.type).toBe('Ed25519');
    expect(statSync(join(dir, NODE_KEY_FILE)).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateNodeKey(dir);
    expect(peerIdFromPrivateKey(again).toString()).toBe(peerIdFromPrivateKey(first).toString());
  });

  test('a damaged key file is an error that says what to do, never silently replaced', async () => {
    const dir = tmp();
    writeFileSync(join(dir, NODE_KEY_FILE), 'not a key');
    await expect(loadOrCreateNodeKey(dir)).rejects.toThrow(NodeKeyError);
    await expect(loadOrCreateNodeKey(dir)).rejects.toThrow(/restore it from a backup, or remove it and rejoin/);
  });
});
