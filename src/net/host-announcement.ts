/**
 * A host announcement (what every host publishes on `/shoal/hosts/1`) and its codec. Receipt never
 * trusts the bytes: size, msgpack, every field's type, length and count are checked; a version this
 * end does not know is reported apart (a newer peer, not an attack). Nothing here throws on input
 * from the network.
 */
import { isIP, isIPv4 } from 'node:net';
import { decode, encode } from '../lib/codec.ts';
import { isPlainObject } from '../lib/frames.ts';

export const HOSTS_TOPIC = '/shoal/hosts/1';
/** The announcement version this end speaks. */
export const HOST_ANNOUNCEMENT_VERSION = 1;

export const HOST_LIMITS = {
  /** Largest accepted announcement, in bytes of msgpack. */
  maxBytes: 1024 * 1024,
  maxNetworks: 4096,
  /** Task addresses over all networks of one announcement. */
  maxAddrs: 65536,
  /** Node ids and network ids. */
  maxIdLength: 256,
} as const;

export type HostRole = 'manager' | 'worker';

/** Overlay network id → IPv4 addresses (no prefix) of this host's tasks on it. */
export type HostNets = Record<string, readonly string[]>;

export interface HostAnnouncement {
  t: 'host';
  v: typeof HOST_ANNOUNCEMENT_VERSION;
  node: string;
  /** Grows with every announcement of one incarnation. */
  seq: number;
  /** ms timestamp of the announcing process's start: a restarted host has a higher one. */
  incarnation: number;
  role: HostRole;
  /** Underlay IP the host's VXLAN traffic uses. */
  addr: string;
  nets: HostNets;
}

/** Why an announcement was dropped (each is counted). */
export type DropReason =
  | 'unsigned' // gossipsub message without a signer (cannot be tied to a node)
  | 'unauthenticatedRelay' // handed to us by a peer that has not authenticated
  | 'unknownSigner' // the signer's peer id is no node of the cluster
  | 'signerMismatch' // `node` is not the signer's node
  | 'tooLarge'
  | 'undecodable'
  | 'malformed'
  | 'stale' // not newer than what the directory holds for that node
  | 'self'; // claims to be this host

export const DROP_REASONS: readonly DropReason[] = [
  'unsigned', 'unauthenticatedRelay', 'unknownSigner', 'signerMismatch', 'tooLarge', 'undecodable', 'malformed', 'stale', 'self',
];

export type DecodeResult =
  | { ok: true; announcement: HostAnnouncement }
  | { ok: false; reason: 'tooLarge' | 'undecodable' | 'malformed' | 'unknownVersion'; detail: string };

/** Encodes an announcement; throws RangeError when it is malformed or over the size bound (a sender bug). */
export function encodeAnnouncement(a: HostAnnouncement): Uint8Array {
  const problem = checkAnnouncement(a);
  if (problem) throw new RangeError(`host announcement: ${problem}`);
  const bytes = encode(a);
  if (bytes.length > HOST_LIMITS.maxBytes) {
    throw new RangeError(`host announcement of ${bytes.length} bytes is over the bound of ${HOST_LIMITS.maxBytes}`);
  }
  return bytes;
}

/** Decodes and checks an announcement from the network. Never throws. */
export function decodeAnnouncement(bytes: Uint8Array): DecodeResult {
  if (bytes.length > HOST_LIMITS.maxBytes) return { ok: false, reason: 'tooLarge', detail: `${bytes.length} bytes` };
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch (err) {
    return { ok: false, reason: 'undecodable', detail: err instanceof Error ? err.message : String(err) };
  }
  if (!isPlainObject(raw)) return { ok: false, reason: 'malformed', detail: 'not a map' };
  if (raw.t !== 'host') return { ok: false, reason: 'malformed', detail: 't: not "host"' };
  if (raw.v !== HOST_ANNOUNCEMENT_VERSION) {
    if (typeof raw.v === 'number' && Number.isSafeInteger(raw.v) && raw.v > 0) {
      return { ok: false, reason: 'unknownVersion', detail: `version ${raw.v}` };
    }
    return { ok: false, reason: 'malformed', detail: 'v: not a positive integer' };
  }
  let problem: string | null;
  try {
    problem = checkAnnouncement(raw);
  } catch (err) {
    problem = String(err);
  }
  if (problem) return { ok: false, reason: 'malformed', detail: problem };
  return { ok: true, announcement: raw as unknown as HostAnnouncement };
}

export const isId = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= HOST_LIMITS.maxIdLength;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Null when `x` is a well-formed v1 announcement, else what is wrong (naming the field). */
export function checkAnnouncement(x: unknown): string | null {
  if (!isPlainObject(x)) return 'not a map';
  if (x.t !== 'host') return 't: not "host"';
  if (x.v !== HOST_ANNOUNCEMENT_VERSION) return `v: not ${HOST_ANNOUNCEMENT_VERSION}`;
  if (!isId(x.node)) return `node: not a string of 1–${HOST_LIMITS.maxIdLength} characters`;
  if (!isCount(x.seq)) return 'seq: not a non-negative integer';
  if (!isCount(x.incarnation)) return 'incarnation: not a non-negative integer';
  if (x.role !== 'manager' && x.role !== 'worker') return 'role: not manager|worker';
  if (typeof x.addr !== 'string' || x.addr.length > 64 || isIP(x.addr) === 0) return 'addr: not an IP address';
  return checkNets(x.nets);
}

/** Null when `nets` is a well-formed, bounded network → task addresses map. */
export function checkNets(nets: unknown): string | null {
  if (!isPlainObject(nets)) return 'nets: not a map';
  const ids = Object.keys(nets);
  if (ids.length > HOST_LIMITS.maxNetworks) return `nets: more than ${HOST_LIMITS.maxNetworks} networks`;
  let total = 0;
  for (const id of ids) {
    if (!isId(id)) return `nets: network id not a string of 1–${HOST_LIMITS.maxIdLength} characters`;
    const addrs = nets[id];
    if (!Array.isArray(addrs)) return `nets.${id}: not an array`;
    total += addrs.length;
    if (total > HOST_LIMITS.maxAddrs) return `nets: more than ${HOST_LIMITS.maxAddrs} addresses in all`;
    for (let i = 0; i < addrs.length; i++) {
      const a: unknown = addrs[i];
      if (typeof a !== 'string' || a.length > 15 || !isIPv4(a)) return `nets.${id}[${i}]: not an IPv4 address`;
    }
  }
  return null;
}

/** Same networks with the same address sets (order ignored). */
export function sameNets(a: HostNets, b: HostNets): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    const x = a[k]!;
    const y = b[k]!;
    if (x.length !== y.length) return false;
    if (x.every((v, i) => v === y[i])) continue;
    const s = new Set(x);
    if (!y.every((v) => s.has(v)) || s.size !== new Set(y).size) return false;
  }
  return true;
}
