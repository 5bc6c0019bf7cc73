/**
 * The names the embedded DNS server answers itself, and the answer for one question. Pure: no
 * sockets, so the rules are tested without a network.
 *
 *   <service>        endpoint mode vip: the service's virtual IP(s); dnsrr: its task addresses
 *   tasks.<service>  every task address, whatever the mode
 *
 * Names are matched without case and without the trailing dot. A name the table knows gets an
 * authoritative answer: its addresses of the asked type (A or AAAA), or none (NODATA) for another
 * type. Address lists are rotated per query so clients that take the first address spread out.
 * A name the table does not know goes to the host's resolvers, unless it can only be ours
 * (`onlyOurs`): then it is NXDOMAIN here.
 */
import { isIP } from 'node:net';
import { MeshConfigError } from './errors.ts';

export interface ServiceRecord {
  /** The service name, as tasks look it up. */
  name: string;
  /** `vip` (the default in Swarm) answers with `vips`; `dnsrr` with the task addresses. */
  mode: 'vip' | 'dnsrr';
  /** Virtual IPs of the service (one per network); required in vip mode. */
  vips?: string[];
  /** Addresses of the service's running tasks. */
  taskAddrs: string[];
}

export const MAX_SERVICES = 65536;
export const MAX_ADDRS_PER_NAME = 1024;

interface NameEntry {
  v4: string[];
  v6: string[];
  rotation: number;
}

const normalize = (name: string) => {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
};

function checkAddrs(addrs: unknown, what: string): string[] {
  if (!Array.isArray(addrs)) throw new MeshConfigError(`${what} must be an array of addresses`);
  if (addrs.length > MAX_ADDRS_PER_NAME) throw new MeshConfigError(`${what} has ${addrs.length} addresses, at most ${MAX_ADDRS_PER_NAME}`);
  for (const a of addrs) if (typeof a !== 'string' || isIP(a) === 0) throw new MeshConfigError(`${what}: "${a}" is not an IP address`);
  return addrs as string[];
}

function entryOf(addrs: string[]): NameEntry {
  const uniq = [...new Set(addrs)];
  return { v4: uniq.filter((a) => isIP(a) === 4), v6: uniq.filter((a) => isIP(a) === 6), rotation: 0 };
}

/** A label is 1-63 bytes; a name at most 253. Checked so a bad record fails at `set`, not per query. */
function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new MeshConfigError('a service record has no name');
  const n = normalize(name);
  if (n.length > 253 || n.split('.').some((l) => l.length === 0 || l.length > 63))
    throw new MeshConfigError(`service name "${name}" is not a valid DNS name (labels of 1-63 characters, 253 in all)`);
  return n;
}

/** Types by which a single label is a top-level domain's own zone: those still go upstream. */
const ZONE_TYPES = new Set(['NS', 'SOA', 'DS', 'DNSKEY']);

/**
 * Whether a name the table does not know can only have been meant for us, so that the answer is
 * NXDOMAIN at once instead of a question for the host's resolvers (which may be unreachable, and
 * then the client waits for their timeouts and gets SERVFAIL):
 *   - `tasks.<label>`: that prefix is ours (a service just removed, a typo);
 *   - a single label (no dot but the trailing one), for any type but a zone's own (NS, SOA, DS,
 *     DNSKEY: a single label is a top-level domain there): no global name answers an address
 *     there, which is why systemd-resolved never sends such A/AAAA queries to unicast DNS
 *     (ResolveUnicastSingleLabel=no). `localhost` keeps going upstream, as before.
 * `tasks.<a.b…>` goes upstream: it may be a real name (`tasks.example.com`).
 */
export function onlyOurs(name: string, type: string): boolean {
  const n = normalize(name);
  if (n.length === 0) return false; // the root
  const labels = n.split('.');
  if (labels.length === 2 && labels[0] === 'tasks' && labels[1]!.length > 0) return true;
  return labels.length === 1 && n !== 'localhost' && !ZONE_TYPES.has(type.toUpperCase());
}

export class ServiceNames {
  private names = new Map<string, NameEntry>();

  /** Replaces the whole table; on a bad record throws MeshConfigError and keeps the old table. */
  set(records: readonly ServiceRecord[]): void {
    if (!Array.isArray(records)) throw new MeshConfigError('service records must be an array');
    if (records.length > MAX_SERVICES) throw new MeshConfigError(`${records.length} service records, at most ${MAX_SERVICES}`);
    const next = new Map<string, NameEntry>();
    for (const r of records) {
      const name = checkName(r?.name);
      if (r.mode !== 'vip' && r.mode !== 'dnsrr') throw new MeshConfigError(`service "${r.name}": endpoint mode "${r.mode}" is not vip or dnsrr`);
      const tasks = checkAddrs(r.taskAddrs, `service "${r.name}" task addresses`);
      let own: string[];
      if (r.mode === 'vip') {
        own = checkAddrs(r.vips ?? [], `service "${r.name}" virtual IPs`);
        if (own.length === 0) throw new MeshConfigError(`service "${r.name}" is in vip mode but has no virtual IP`);
      } else own = tasks;
      if (next.has(name) || next.has(`tasks.${name}`)) throw new MeshConfigError(`service name "${r.name}" is listed twice`);
      next.set(name, entryOf(own));
      next.set(`tasks.${name}`, entryOf(tasks));
    }
    this.names = next;
  }

  has(name: string): boolean {
    return this.names.has(normalize(name));
  }

  /**
   * Addresses for a question, rotated; null when the table does not have the name (NXDOMAIN when
   * `onlyOurs`, else the query goes upstream). An empty list is NODATA: the name is ours, but has
   * nothing of that type.
   */
  lookup(name: string, type: string): string[] | null {
    const e = this.names.get(normalize(name));
    if (e === undefined) return null;
    const list = type === 'A' ? e.v4 : type === 'AAAA' ? e.v6 : type === 'ANY' ? [...e.v4, ...e.v6] : [];
    if (list.length <= 1) return list;
    const k = e.rotation++ % list.length;
    return [...list.slice(k), ...list.slice(0, k)];
  }
}
