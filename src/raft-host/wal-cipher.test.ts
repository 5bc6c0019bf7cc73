import { afterEach, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeDisk } from './disk.ts';
import { Wal, WalCorruptionError, WalKeyMissingError } from './wal.ts';
import { aesGcmCipher, WalKeyError } from './wal-cipher.ts';
import type { Entry } from '../raft/index.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(join(tmpdir(), 'shoal-walc-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const disk = new NodeDisk();
const enc = new TextEncoder();
const SECRET = 'top-secret-password-4711';
const CA_KEY = '-----BEGIN EC PRIVATE KEY-----MHcCAQEEIBkg';
const ent = (index: number, text: string): Entry => ({ index, term: 1, type: 'normal', data: enc.encode(text) });

/** Every file of the dir, concatenated: what a leaked backup of raft/ would show. */
function allBytes(dir: string): Buffer {
  return Buffer.concat(fs.readdirSync(dir).map((n) => fs.readFileSync(join(dir, n))));
}

function writeLog(dir: string, key?: Uint8Array): void {
  const { wal } = Wal.open(disk, dir, key ? { cipher: aesGcmCipher(key) } : {});
  wal.saveConfState({ voters: ['a'], learners: [] });
  wal.save({ term: 1, vote: 'a', commit: 2 }, [ent(1, `secret ${SECRET}`), ent(2, `ca ${CA_KEY}`)]);
  wal.saveSnapshot({ meta: { index: 2, term: 1, conf: { voters: ['a'], learners: [] } }, data: enc.encode(`state ${SECRET} ${CA_KEY}`) });
  wal.save({ term: 1, vote: 'a', commit: 3 }, [ent(3, `again ${SECRET}`)]);
  wal.close();
}

describe('sealed WAL', () => {
  test('neither the records nor the snapshot hold a secret or the CA key in the clear, and they replay', () => {
    const dir = tempDir();
    const key = randomBytes(32);
    writeLog(dir, key);
    const bytes = allBytes(dir);
    expect(bytes.includes(SECRET)).toBe(false);
    expect(bytes.includes(CA_KEY)).toBe(false);
    const { wal, state } = Wal.open(disk, dir, { cipher: aesGcmCipher(key) });
    wal.close();
    expect(new TextDecoder().decode(state.snapshot!.data)).toBe(`state ${SECRET} ${CA_KEY}`);
    expect(state.entries.map((e) => new TextDecoder().decode(e.data))).toEqual([`again ${SECRET}`]);
    expect(state.hardState.commit).toBe(3);
    expect(state.conf).toEqual({ voters: ['a'], learners: [] });
  });

  test('the clear-text control check: the same log without a key does hold the bytes', () => {
    const dir = tempDir();
    writeLog(dir);
    expect(allBytes(dir).includes(SECRET)).toBe(true);
  });

  test('a record altered on disk (with its CRC recomputed) is refused as corruption', () => {
    const dir = tempDir();
    const key = randomBytes(32);
    const { wal } = Wal.open(disk, dir, { cipher: aesGcmCipher(key) });
    wal.save({ term: 1, vote: 'a', commit: 1 }, [ent(1, 'one')]);
    wal.save({ term: 1, vote: 'a', commit: 2 }, [ent(2, 'two')]);
    wal.close();
    const seg = join(dir, fs.readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    const buf = fs.readFileSync(seg);
    // Walk to the first entries record (type 2 | sealed) and flip a ciphertext byte, fixing the CRC.
    let off = 0;
    while (off < buf.length && buf[off + 8] !== (0x80 | 2)) off += 8 + buf.readUInt32LE(off);
    expect(off).toBeLessThan(buf.length);
    const len = buf.readUInt32LE(off);
    buf[off + 8 + len - 20] ^= 0x01;
    buf.writeUInt32LE(Bun.hash.crc32(buf.subarray(off + 8, off + 8 + len)) >>> 0, off + 4);
    fs.writeFileSync(seg, buf);
    expect(() => Wal.open(disk, dir, { cipher: aesGcmCipher(key) })).toThrow(WalCorruptionError);
    expect(() => Wal.open(disk, dir, { cipher: aesGcmCipher(key) })).toThrow(/failed authentication/);
  });

  test('another key cannot read it; no key is a missing key, not corruption', () => {
    const dir = tempDir();
    writeLog(dir, randomBytes(32));
    expect(() => Wal.open(disk, dir, { cipher: aesGcmCipher(randomBytes(32)) })).toThrow(/failed authentication/);
    expect(() => Wal.open(disk, dir)).toThrow(WalKeyMissingError);
  });

  test('a log written in the clear is read, then rewritten sealed at once', () => {
    const dir = tempDir();
    writeLog(dir);
    const key = randomBytes(32);
    const first = Wal.open(disk, dir, { cipher: aesGcmCipher(key) });
    expect(first.state.entries.map((e) => e.index)).toEqual([3]);
    expect(new TextDecoder().decode(first.state.snapshot!.data)).toContain(SECRET);
    expect(allBytes(dir).includes(SECRET)).toBe(false);
    // It keeps working after the rewrite, and the next open sees the same state.
    first.wal.save({ term: 1, vote: 'a', commit: 4 }, [ent(4, 'four')]);
    first.wal.close();
    const again = Wal.open(disk, dir, { cipher: aesGcmCipher(key) });
    again.wal.close();
    expect(again.state.entries.map((e) => e.index)).toEqual([3, 4]);
    expect(again.state.hardState.commit).toBe(4);
    expect(again.state.conf).toEqual({ voters: ['a'], learners: [] });
    expect(again.state.snapshot!.meta.index).toBe(2);
    expect(allBytes(dir).includes(SECRET)).toBe(false);
  });

  test('a key of the wrong size is refused', () => {
    expect(() => aesGcmCipher(new Uint8Array(16))).toThrow(WalKeyError);
  });
});
