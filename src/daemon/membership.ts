/**
 * What a host keeps about its place in a cluster, in `<data-dir>/cluster.json` (0600): the cluster
 * id, its role, the pinned root CA, its own certificate (for the key in `node.key`), and the managers
 * it knows. A restart resumes from it without a token. The CA key is not here: it lives in the
 * replicated store, which only managers hold.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, ShoalError } from '../lib/errors.ts';
import type { NodeRole } from '../types/index.ts';

export const MEMBERSHIP_FILE = 'cluster.json';
/** The libp2p listener's port when --listen-addr gives none (Docker's cluster port is 2377; ours differs so both can run). */
export const DEFAULT_CLUSTER_PORT = 4242;

export interface Membership {
  ClusterID: string;
  Role: NodeRole;
  /** PEM of the pinned root CA certificate. */
  RootCA: string;
  /** PEM of this node's certificate. */
  Cert: string;
  /** True when this host joined an existing cluster (its raft log starts without a configuration). */
  Joined: boolean;
  /** Managers this host knows, to reach one after a restart: node id and IP:PORT. */
  Managers: { NodeID: string; Addr: string }[];
}

export function loadMembership(dataDir: string): Membership | null {
  const file = join(dataDir, MEMBERSHIP_FILE);
  if (!existsSync(file)) return null;
  let m: Membership;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as Membership;
  } catch (err) {
    throw new ShoalError(`${file} is not readable JSON (${(err as Error).message}): restore it, or remove it and the data dir's raft/ and join the cluster again`);
  }
  if (!m || typeof m.ClusterID !== 'string' || (m.Role !== 'manager' && m.Role !== 'worker') || typeof m.RootCA !== 'string' || typeof m.Cert !== 'string') {
    throw new ShoalError(`${file} lacks ClusterID, Role, RootCA or Cert: restore it, or remove it and join the cluster again`);
  }
  m.Managers = Array.isArray(m.Managers) ? m.Managers.filter((x) => x && typeof x.NodeID === 'string' && typeof x.Addr === 'string') : [];
  m.Joined = m.Joined === true;
  return m;
}

export function saveMembership(dataDir: string, m: Membership): void {
  const file = join(dataDir, MEMBERSHIP_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(m, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export const ADDRESSES_FILE = 'addresses.json';

/** The addresses a host was last started with (`--listen-addr`, `--advertise-addr`), as given. */
export interface GivenAddrs { listenAddr?: string; advertiseAddr?: string }

/**
 * The addresses to start with: those given now (and remembered in `<data-dir>/addresses.json` for
 * the next start), else those remembered, as Docker keeps a node's addresses: a restart without the
 * flags must not move the host to another address its peers do not know.
 */
export function rememberAddrs(dataDir: string, given: GivenAddrs): GivenAddrs {
  const file = join(dataDir, ADDRESSES_FILE);
  if (given.listenAddr !== undefined || given.advertiseAddr !== undefined) {
    const keep: GivenAddrs = {};
    if (given.listenAddr !== undefined) keep.listenAddr = given.listenAddr;
    if (given.advertiseAddr !== undefined) keep.advertiseAddr = given.advertiseAddr;
    writeFileSync(`${file}.tmp`, JSON.stringify(keep) + '\n', { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return keep;
  }
  if (!existsSync(file)) return {};
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const out: GivenAddrs = {};
    if (typeof raw.listenAddr === 'string') out.listenAddr = raw.listenAddr;
    if (typeof raw.advertiseAddr === 'string') out.advertiseAddr = raw.advertiseAddr;
    return out;
  } catch (err) {
    throw new InvalidArgumentError(`${file}: not readable JSON (${(err as Error).message}); fix or remove it, or start with --listen-addr/--advertise-addr`);
  }
}

/** Rewrites node.json: a joined host takes the node id its certificate names. */
export function saveNodeId(dataDir: string, nodeId: string): void {
  const file = join(dataDir, 'node.json');
  writeFileSync(`${file}.tmp`, JSON.stringify({ NodeID: nodeId }) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export interface HostPort { host: string; port: number }

/** `IP:PORT`, `[IPv6]:PORT`, `IP` or `:PORT`, as --listen-addr/--advertise-addr take them. */
export function parseHostPort(flag: string, value: string, defaultHost = '0.0.0.0'): HostPort {
  const v = value.trim();
  let host: string;
  let port: string | undefined;
  const m6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(v);
  if (m6) [host, port] = [m6[1]!, m6[2]];
  else if (/^[^:]*:\d+$/.test(v)) [host, port] = [v.slice(0, v.lastIndexOf(':')), v.slice(v.lastIndexOf(':') + 1)];
  else [host, port] = [v, undefined];
  host ||= defaultHost;
  const p = port === undefined ? DEFAULT_CLUSTER_PORT : Number(port);
  const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) && host.split('.').every((x) => Number(x) <= 255);
  const ipv6 = host.includes(':');
  if (!ipv4 && !ipv6) throw new InvalidArgumentError(`${flag} "${value}": expected IP:PORT with a numeric IP address, e.g. 192.168.1.10:${DEFAULT_CLUSTER_PORT}`);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidArgumentError(`${flag} "${value}": the port must be 1–65535`);
  return { host, port: p };
}

export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The libp2p multiaddr of an IP:PORT. */
export function toMultiaddrString(a: HostPort): string {
  return `/${a.host.includes(':') ? 'ip6' : 'ip4'}/${a.host}/tcp/${a.port}`;
}
