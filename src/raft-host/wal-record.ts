// The WAL's records (docs/raft-storage.md, "Format"): `u32 length | u32 crc32 | u8 type | payload`,
// parsing that tells a torn or damaged record from a good one, and which records are sealed.
import { Packr } from 'msgpackr/pack';
import type { Entry } from '../raft/index.ts';
import { SEALED_FLAG } from './wal-cipher.ts';

export const packr = new Packr({ useRecords: false, moreTypes: false });

export const RECORD_HEADER_BYTES = 8; // u32 length (of type byte + payload), u32 crc32 (of same)
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

export const RecordType = {
  HardState: 1,
  Entries: 2,
  SnapshotMarker: 3,
  ConfState: 4,
} as const;
/** The one record of a snapshot file. */
export const SNAPSHOT_RECORD = 0;

export function crc32(data: Uint8Array): number {
  return Bun.hash.crc32(data) >>> 0;
}

export function encodeRecord(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + 1 + payload.length);
  out[RECORD_HEADER_BYTES] = type;
  out.set(payload, RECORD_HEADER_BYTES + 1);
  const body = out.subarray(RECORD_HEADER_BYTES);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(0, body.length, true);
  dv.setUint32(4, crc32(body), true);
  return out;
}

/**
 * The same record as encodeRecord, as a 9-byte head (length, CRC, type) and the payload itself:
 * written one after the other, a large entries record is not copied once more into one buffer.
 */
export function encodeRecordParts(type: number, payload: Uint8Array): [Uint8Array, Uint8Array] {
  const head = new Uint8Array(RECORD_HEADER_BYTES + 1);
  head[RECORD_HEADER_BYTES] = type;
  const len = 1 + payload.length;
  const crc = Bun.hash.crc32(payload, Bun.hash.crc32(head.subarray(RECORD_HEADER_BYTES))) >>> 0;
  head[0] = len & 0xff;
  head[1] = (len >>> 8) & 0xff;
  head[2] = (len >>> 16) & 0xff;
  head[3] = len >>> 24;
  head[4] = crc & 0xff;
  head[5] = (crc >>> 8) & 0xff;
  head[6] = (crc >>> 16) & 0xff;
  head[7] = crc >>> 24;
  return [head, payload];
}

export type Parsed = { ok: true; type: number; payload: Uint8Array; next: number } | { ok: false; reason: string };

export function parseAt(buf: Uint8Array, off: number): Parsed {
  if (buf.length - off < RECORD_HEADER_BYTES) return { ok: false, reason: 'short header' };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = dv.getUint32(off, true);
  if (len === 0) return { ok: false, reason: 'zero length' };
  if (len > MAX_RECORD_BYTES) return { ok: false, reason: `length ${len} over bound` };
  if (off + RECORD_HEADER_BYTES + len > buf.length) return { ok: false, reason: 'record runs past end of file' };
  const body = buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len);
  if (crc32(body) !== dv.getUint32(off + 4, true)) return { ok: false, reason: 'checksum mismatch' };
  return { ok: true, type: body[0]!, payload: body.subarray(1), next: off + RECORD_HEADER_BYTES + len };
}

/** True when some valid record starts after `from`: then damage at `from` is not a torn tail. */
export function validRecordAfter(buf: Uint8Array, from: number): boolean {
  for (let off = from + 1; off + RECORD_HEADER_BYTES < buf.length; off++) {
    const p = parseAt(buf, off);
    const t = p.ok ? p.type & ~SEALED_FLAG : 0;
    if (t >= RecordType.HardState && t <= RecordType.ConfState) return true;
  }
  return false;
}

/**
 * Sealed records: entries and snapshots, which carry the store's objects. Hard state, configuration
 * and snapshot markers hold only terms, indexes and node ids; leaving them in the clear saves a
 * cipher pass on every ready that only moves the commit index (most of a follower's).
 */
export function carriesState(type: number): boolean {
  return type === RecordType.Entries || type === SNAPSHOT_RECORD;
}

export const TYPE_CODE = { normal: 0, conf: 1 } as const;

/**
 * msgpack of `[[term, index, type code, data], …]`, as packr.pack writes it and packr.unpack reads it,
 * written in one pass into a buffer of the exact size. packr's generic path built an array per entry
 * and regrew its buffer for large batches: ~15% of the CPU of a commit at 4 096 proposals in flight
 * (bench/raft.ts). wal-record.test.ts checks that packr reads back the same values.
 */
export function encodeEntries(entries: Entry[]): Uint8Array {
  let size = 5;
  for (const e of entries) {
    if (!isIndex(e.term) || !isIndex(e.index)) return packr.pack(entries.map((x) => [x.term, x.index, TYPE_CODE[x.type], x.data]));
    size += 1 + uintBytes(e.term) + uintBytes(e.index) + 1 + 5 + e.data.length;
  }
  const out = new Uint8Array(size);
  let o = putArrayHeader(out, 0, entries.length);
  for (const e of entries) {
    out[o++] = 0x94; // fixarray of 4
    o = putUint(out, o, e.term);
    o = putUint(out, o, e.index);
    out[o++] = TYPE_CODE[e.type]; // positive fixint
    o = putBin(out, o, e.data);
  }
  return out.subarray(0, o);
}

const isIndex = (n: number) => Number.isSafeInteger(n) && n >= 0;

function uintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1_0000_0000 ? 5 : 9;
}

function putU16(out: Uint8Array, o: number, n: number): number {
  out[o] = n >>> 8;
  out[o + 1] = n & 0xff;
  return o + 2;
}

function putU32(out: Uint8Array, o: number, n: number): number {
  out[o] = n >>> 24;
  out[o + 1] = (n >>> 16) & 0xff;
  out[o + 2] = (n >>> 8) & 0xff;
  out[o + 3] = n & 0xff;
  return o + 4;
}

function putUint(out: Uint8Array, o: number, n: number): number {
  if (n < 0x80) {
    out[o] = n;
    return o + 1;
  }
  if (n < 0x100) {
    out[o] = 0xcc;
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 0x10000) {
    out[o] = 0xcd;
    return putU16(out, o + 1, n);
  }
  if (n < 0x1_0000_0000) {
    out[o] = 0xce;
    return putU32(out, o + 1, n);
  }
  // Beyond 32 bits a float64, which every msgpack reader turns back into the same safe integer.
  out[o] = 0xcb;
  new DataView(out.buffer, out.byteOffset + o + 1, 8).setFloat64(0, n);
  return o + 9;
}

function putArrayHeader(out: Uint8Array, o: number, n: number): number {
  if (n < 16) {
    out[o] = 0x90 | n;
    return o + 1;
  }
  if (n < 0x10000) {
    out[o] = 0xdc;
    return putU16(out, o + 1, n);
  }
  out[o] = 0xdd;
  return putU32(out, o + 1, n);
}

function putBin(out: Uint8Array, o: number, data: Uint8Array): number {
  const n = data.length;
  if (n < 0x100) {
    out[o] = 0xc4;
    out[o + 1] = n;
    o += 2;
  } else if (n < 0x10000) {
    out[o] = 0xc5;
    o = putU16(out, o + 1, n);
  } else {
    out[o] = 0xc6;
    o = putU32(out, o + 1, n);
  }
  out.set(data, o);
  return o + n;
}
export function decodeEntries(b: Uint8Array): Entry[] {
  const raw = packr.unpack(b) as [number, number, number, Uint8Array][];
  return raw.map(([term, index, t, data]) => ({ term, index, type: t === 1 ? 'conf' : 'normal', data: new Uint8Array(data) }));
}
