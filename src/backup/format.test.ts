import { describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { decode, encode } from '../lib/codec.ts';
import type { Secret } from '../types/index.ts';
import { type BackupHeader, encodeBackup, openBackup, readBackupHeader, type StoreSnapshot } from './format.ts';

const CLUSTER = 'c0ffee';
const SECRET = 'the-secret-bytes-ZmFrZQ';
const KEY = 'SWMKEY-1-4b2f1e0a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f';

function snapshotBytes(index = 42): Uint8Array {
  const meta = (id: string) => ({ ID: id, Version: { Index: 7 }, CreatedAt: 'a', UpdatedAt: 'b' });
  return encode({
    index,
    tables: {
      clusters: [{ ...meta(CLUSTER), Spec: { Name: 'default' } }],
      nodes: [], services: [{ ...meta('s1'), Spec: { Name: 'web' } }], tasks: [], networks: [],
      secrets: [{ ...meta('x1'), Spec: { Name: 'pw', Data: SECRET } }], configs: [],
    },
  });
}

const header = (over: Partial<BackupHeader> = {}): Omit<BackupHeader, 'Encryption'> => ({
  ClusterID: CLUSTER, RaftIndex: 42, RaftTerm: 3, NodeID: 'n1', ShoalVersion: 'test', CreatedAt: '2026-01-01T00:00:00.000Z',
  Objects: { clusters: 1, nodes: 0, services: 1, tasks: 0, networks: 0, secrets: 1, configs: 0 }, ...over,
});

const plain = () => encodeBackup({ header: header(), snapshot: snapshotBytes() }).bytes;
const sealed = () => encodeBackup({ header: header(), snapshot: snapshotBytes(), unlockKey: KEY }).bytes;
const flip = (b: Uint8Array, at: number) => {
  const c = new Uint8Array(b);
  c[at] = c[at]! ^ 0x01;
  return c;
};

describe('backup file', () => {
  test('round trip: the header and the very snapshot bytes come back', () => {
    const { bytes, header: h } = encodeBackup({ header: header(), snapshot: snapshotBytes() });
    expect(h.Encryption).toBeUndefined();
    expect(readBackupHeader(bytes, 'f')).toEqual(h);
    const opened = openBackup(bytes, 'f');
    expect(opened.snapshot).toEqual(snapshotBytes());
    expect(opened.state.tables.secrets[0]!.ID).toBe('x1');
    expect(Buffer.from(bytes).subarray(0, 8).toString()).toBe('SHOALBAK');
  });

  test('every truncation is refused as truncated, naming the file', () => {
    const b = plain();
    for (const n of [9, 14, 20, b.length - 33, b.length - 1]) {
      expect(() => openBackup(b.subarray(0, n), 'backup.bin')).toThrow(/backup\.bin is truncated/);
    }
  });

  test('one flipped byte anywhere past the magic is refused before anything is decoded', () => {
    const b = plain();
    // The version, a length, the header, the payload, the checksum: each gives a clear refusal.
    for (const at of [9, 12, 20, 60, b.length - 40, b.length - 1]) {
      expect(() => openBackup(flip(b, at), 'f')).toThrow(/f is (damaged|truncated|a shoal backup of format version)/);
    }
    expect(() => openBackup(flip(b, 60), 'f')).toThrow(/SHA-256 does not match/);
    expect(() => openBackup(flip(b, 2), 'f')).toThrow(/f is not a shoal backup/);
  });

  test('not a backup, trailing bytes, a newer format', () => {
    expect(() => openBackup(Buffer.from('{"hello":"world"}\n'), 'notes.json')).toThrow('notes.json is not a shoal backup (it does not begin with "SHOALBAK")');
    expect(() => openBackup(new Uint8Array(0), 'empty')).toThrow(/empty is not a shoal backup/);
    expect(() => openBackup(Buffer.concat([plain(), Buffer.from('x')]), 'f')).toThrow('f is damaged: 1 bytes follow its end');
    const v2 = new Uint8Array(plain());
    v2[9] = 2;
    expect(() => openBackup(v2, 'f')).toThrow('f is a shoal backup of format version 2; this shoal reads version 1');
  });

  test('a snapshot that disagrees with its header is refused', () => {
    const wrongCount = encodeBackup({ header: header({ Objects: { services: 5 } }), snapshot: snapshotBytes() }).bytes;
    expect(() => openBackup(wrongCount, 'f')).toThrow('f is damaged: it holds 1 services, its header says 5');
    const wrongIndex = encodeBackup({ header: header(), snapshot: snapshotBytes(41) }).bytes;
    expect(() => openBackup(wrongIndex, 'f')).toThrow('its store snapshot is at index 41, its header says 42');
    const wrongCluster = encodeBackup({ header: header({ ClusterID: 'other' }), snapshot: snapshotBytes() }).bytes;
    expect(() => openBackup(wrongCluster, 'f')).toThrow('it does not hold the cluster object of other');
  });

  test('sealed with the unlock key: no plaintext inside; opened only with that key', () => {
    const b = sealed();
    expect(Buffer.from(b).includes(SECRET)).toBe(false);
    expect(Buffer.from(b).includes('the-secret')).toBe(false);
    const h = readBackupHeader(b, 'f');
    expect(h.Encryption).toMatchObject({ Algorithm: 'AES-256-GCM', KDF: 'HKDF-SHA256' });
    expect(() => openBackup(b, 'f')).toThrow(`f is encrypted: its cluster (${CLUSTER}) had autolock on; give the cluster's unlock key with --unlock-key`);
    expect(() => openBackup(b, 'f', 'SWMKEY-1-wrongwrongwrong')).toThrow('--unlock-key does not open f');
    expect(() => openBackup(b, 'f', 'hunter2')).toThrow('is not an unlock key (they begin with SWMKEY-1-)');
    const opened = openBackup(b, 'f', KEY);
    expect(opened.snapshot).toEqual(snapshotBytes());
    expect((decode<StoreSnapshot>(opened.snapshot).tables.secrets[0] as Secret).Spec).toEqual({ Name: 'pw', Data: SECRET });
  });

  test('a sealed backup whose header was edited (and checksum recomputed) fails the tag', () => {
    const b = Buffer.from(sealed());
    const at = b.indexOf('"NodeID":"n1"') + '"NodeID":"n'.length;
    b[at] = '2'.charCodeAt(0);
    createHash('sha256').update(b.subarray(0, b.length - 32)).digest().copy(b, b.length - 32);
    expect(readBackupHeader(b, 'f').NodeID).toBe('n2');
    expect(() => openBackup(b, 'f', KEY)).toThrow('--unlock-key does not open f');
  });
});
