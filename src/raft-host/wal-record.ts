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

export function encodeEntries(entries: Entry[]): Uint8Array {
  return packr.pack(entries.map((e) => [e.term, e.index, TYPE_CODE[e.type], e.data]));
}
export function decodeEntries(b: Uint8Array): Entry[] {
  const raw = packr.unpack(b) as [number, number, number, Uint8Array][];
  return raw.map(([term, index, t, data]) => ({ term, index, type: t === 1 ? 'conf' : 'normal', data: new Uint8Array(data) }));
}
