/**
 * The backup file (`shoal swarm backup`, `shoal daemon --restore`): one consistent snapshot of a
 * manager's store, framed so that a damaged or truncated file is recognised before anything is
 * written anywhere.
 *
 *   "SHOALBAK"            8 bytes, the magic
 *   format version        u16 big-endian (1)
 *   header length H       u32 big-endian
 *   header                H bytes of JSON (BackupHeader): readable with `head -c`, never secret
 *   payload length P      u32 big-endian
 *   payload               P bytes: the store snapshot (msgpack, as raft snapshots hold it), or,
 *                         when the cluster had autolock on, that snapshot sealed (crypto.ts)
 *   SHA-256               32 bytes, over everything before it
 *
 * The checksum catches damage and truncation (bit rot, a copy cut short); it is not a signature:
 * the GCM tag of an encrypted payload is what tells a forged one apart, with the header as its
 * associated data.
 */
import { createHash } from 'node:crypto';
import { decode } from '../lib/codec.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import { TABLES, type TableName } from '../store/actions.ts';
import type { Meta } from '../types/index.ts';
import { openPayload, sealPayload, type Sealing } from './crypto.ts';

export const BACKUP_MAGIC = 'SHOALBAK';
export const BACKUP_FORMAT_VERSION = 1;
const PREFIX_BYTES = 8 + 2 + 4;
const SHA_BYTES = 32;
/** Bounds a header may not exceed: anything bigger is not ours, whatever its length field says. */
const MAX_HEADER_BYTES = 64 * 1024;

export interface BackupHeader {
  ClusterID: string;
  /** The one point of the applied log the snapshot is at: every object is as it was after this entry. */
  RaftIndex: number;
  RaftTerm: number;
  /** The manager that took it. */
  NodeID: string;
  ShoalVersion: string;
  CreatedAt: string;
  /** Objects per table (clusters, nodes, services, tasks, networks, secrets, configs). */
  Objects: Record<string, number>;
  /** Present when the payload is sealed with the cluster's unlock key (autolock was on). */
  Encryption?: Sealing;
}

/** The store snapshot inside: MemoryStore.snapshot()'s shape. */
export interface StoreSnapshot {
  index: number;
  tables: Record<TableName, Meta[]>;
}

export class BackupError extends InvalidArgumentError {}

export interface EncodeInput {
  header: Omit<BackupHeader, 'Encryption'>;
  /** MemoryStore.snapshot() bytes, at header.RaftIndex. */
  snapshot: Uint8Array;
  /** The cluster's unlock key (SWMKEY-1-…) when autolock is on: the payload is sealed with it. */
  unlockKey?: string;
}

export function encodeBackup({ header, snapshot, unlockKey }: EncodeInput): { header: BackupHeader; bytes: Uint8Array } {
  const sealed = unlockKey ? sealPayload(unlockKey) : null;
  const full: BackupHeader = sealed ? { ...header, Encryption: sealed.sealing } : header;
  const headerBytes = Buffer.from(JSON.stringify(full));
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write(BACKUP_MAGIC, 0, 'latin1');
  prefix.writeUInt16BE(BACKUP_FORMAT_VERSION, 8);
  prefix.writeUInt32BE(headerBytes.length, 10);
  const aad = Buffer.concat([prefix, headerBytes]);
  const payload = sealed ? sealed.seal(snapshot, aad) : snapshot;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(payload.length);
  const body = Buffer.concat([aad, len, payload]);
  return { header: full, bytes: Buffer.concat([body, createHash('sha256').update(body).digest()]) };
}

interface Framed { header: BackupHeader; aad: Buffer; payload: Buffer }

/**
 * Checks the frame and the checksum, and parses the header. `name` is how errors call the file.
 * Throws BackupError naming what is wrong: not a backup, a newer format, truncated, damaged.
 */
function unframe(bytes: Uint8Array, name: string): Framed {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 8 || b.subarray(0, 8).toString('latin1') !== BACKUP_MAGIC) {
    throw new BackupError(`${name} is not a shoal backup (it does not begin with "${BACKUP_MAGIC}"); give a file written by "shoal swarm backup --out FILE"`);
  }
  if (b.length < PREFIX_BYTES + 4 + SHA_BYTES) throw truncated(name, b.length, PREFIX_BYTES + 4 + SHA_BYTES);
  const version = b.readUInt16BE(8);
  if (version !== BACKUP_FORMAT_VERSION) {
    throw new BackupError(`${name} is a shoal backup of format version ${version}; this shoal reads version ${BACKUP_FORMAT_VERSION}: restore it with the shoal version that wrote it, or a newer one`);
  }
  const h = b.readUInt32BE(10);
  if (h > MAX_HEADER_BYTES) throw damaged(name, `its header length (${h} bytes) is impossible`);
  const lenAt = PREFIX_BYTES + h;
  if (b.length < lenAt + 4 + SHA_BYTES) throw truncated(name, b.length, lenAt + 4 + SHA_BYTES);
  const p = b.readUInt32BE(lenAt);
  const end = lenAt + 4 + p;
  if (b.length < end + SHA_BYTES) throw truncated(name, b.length, end + SHA_BYTES);
  if (b.length > end + SHA_BYTES) throw damaged(name, `${b.length - end - SHA_BYTES} bytes follow its end`);
  const sum = createHash('sha256').update(b.subarray(0, end)).digest();
  if (!sum.equals(b.subarray(end, end + SHA_BYTES))) throw damaged(name, 'its SHA-256 does not match its content (a byte changed since it was written)');
  let header: BackupHeader;
  try {
    header = JSON.parse(b.subarray(PREFIX_BYTES, lenAt).toString('utf8')) as BackupHeader;
  } catch (e) {
    throw damaged(name, `its header is not JSON (${(e as Error).message})`);
  }
  checkHeader(header, name);
  return { header, aad: b.subarray(0, lenAt), payload: b.subarray(lenAt + 4, end) };
}

function truncated(name: string, have: number, need: number): BackupError {
  return new BackupError(`${name} is truncated: it holds ${have} bytes, its frame needs at least ${need}; it was cut short (an interrupted copy?): use a complete copy`);
}

function damaged(name: string, why: string): BackupError {
  return new BackupError(`${name} is damaged: ${why}; nothing was restored: use another copy of the backup`);
}

function checkHeader(h: BackupHeader, name: string): void {
  const bad = (field: string) => damaged(name, `its header has no valid ${field}`);
  if (!h || typeof h !== 'object') throw bad('fields');
  if (typeof h.ClusterID !== 'string' || !h.ClusterID) throw bad('ClusterID');
  if (!Number.isInteger(h.RaftIndex) || h.RaftIndex < 1) throw bad('RaftIndex');
  if (!Number.isInteger(h.RaftTerm) || h.RaftTerm < 1) throw bad('RaftTerm');
  if (typeof h.NodeID !== 'string') throw bad('NodeID');
  if (!h.Objects || typeof h.Objects !== 'object') throw bad('Objects');
}

/** The header of a backup whose frame and checksum are sound (what `swarm backup` prints, and the restore checks first). */
export function readBackupHeader(bytes: Uint8Array, name: string): BackupHeader {
  return unframe(bytes, name).header;
}

/**
 * Everything in a backup, checked: frame, checksum, decryption (with `unlockKey` when sealed), and
 * a snapshot that agrees with its header (one cluster, its ID, the index, the object counts).
 */
export function openBackup(bytes: Uint8Array, name: string, unlockKey?: string): { header: BackupHeader; snapshot: Uint8Array; state: StoreSnapshot } {
  const { header, aad, payload } = unframe(bytes, name);
  let snapshot: Uint8Array = payload;
  if (header.Encryption) {
    if (!unlockKey) {
      throw new BackupError(`${name} is encrypted: its cluster (${header.ClusterID}) had autolock on; give the cluster's unlock key with --unlock-key SWMKEY-1-…`);
    }
    snapshot = openPayload(header.Encryption, unlockKey, payload, aad, name);
  }
  let state: StoreSnapshot;
  try {
    state = decode<StoreSnapshot>(snapshot);
  } catch (e) {
    throw damaged(name, `its store snapshot does not decode (${(e as Error).message})`);
  }
  checkState(state, header, name);
  return { header, snapshot, state };
}

function checkState(s: StoreSnapshot, h: BackupHeader, name: string): void {
  if (!s || typeof s !== 'object' || !s.tables || typeof s.tables !== 'object') throw damaged(name, 'its store snapshot has no tables');
  if (s.index !== h.RaftIndex) throw damaged(name, `its store snapshot is at index ${s.index}, its header says ${h.RaftIndex}`);
  for (const t of TABLES) {
    const rows = s.tables[t] ?? [];
    if (!Array.isArray(rows) || rows.some((o) => !o || typeof o.ID !== 'string' || !o.Version || !Number.isInteger(o.Version.Index))) {
      throw damaged(name, `its ${t} table holds objects without an ID or a Version`);
    }
    if (h.Objects[t] !== undefined && h.Objects[t] !== rows.length) throw damaged(name, `it holds ${rows.length} ${t}, its header says ${h.Objects[t]}`);
  }
  const clusters = s.tables.clusters ?? [];
  if (clusters.length !== 1 || clusters[0]!.ID !== h.ClusterID) throw damaged(name, `it does not hold the cluster object of ${h.ClusterID}`);
}

/** Objects per table of a store snapshot. */
export function countObjects(s: StoreSnapshot): Record<string, number> {
  return Object.fromEntries(TABLES.map((t) => [t, (s.tables[t] ?? []).length]));
}
