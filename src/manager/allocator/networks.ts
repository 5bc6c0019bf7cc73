/**
 * Overlay network resources: a subnet and a VXLAN id per network, a virtual IP per (service, network)
 * and an address per (task, network). Nothing is kept outside the store: what is in use is read
 * from the objects that hold it (networks, services' VirtualIPs, live tasks' NetworksAttachments), so
 * deleting a task (the reaper) or finishing it releases its address, and a new leader sees the same.
 *
 * Default pool: 10.0.0.0/8 carved into /24s, from 10.0.1.0/24 up (10.0.0.0/24 is kept for an ingress
 * network, as in Swarm). A network's first host address is its gateway; the rest go to VIPs and
 * tasks, lowest free first.
 */
import { addressOf, type Cidr, firstHost, formatCidr, formatIpv4, lastHost, overlaps, parseCidr, withPrefix } from '../../lib/cidr.ts';
import { isTerminal, type IPAMConfig, type Network, type NetworkAttachment, type Service, type Task, VXLAN_OPTION } from '../../types/index.ts';

export { VXLAN_OPTION };

export const DEFAULT_POOL = '10.0.0.0/8';
export const DEFAULT_SUBNET_PREFIX = 24;
/** The pool's first /24 is left for an ingress network. */
const POOL_FIRST_SUBNET = 1;
/** VXLAN ids: Docker's overlay driver starts above 4096; 24 bits. */
export const VNI_FIRST = 4097;
export const VNI_LAST = 2 ** 24 - 1;
/** Smallest subnet accepted: /29 is 6 host addresses (gateway, a VIP, tasks). */
export const MAX_SUBNET_PREFIX = 29;

export type Result<T> = { ok: true; value: T } | { ok: false; message: string };

function cidrOf(s: string): Cidr | null {
  const c = parseCidr(s);
  return typeof c === 'string' ? null : c;
}

/** Subnets a network holds or has asked for. */
function subnetsOf(n: Network): Cidr[] {
  return [...(n.Spec.IPAM.Config ?? []), ...(n.IPAM?.Config ?? [])].map((c) => cidrOf(c.Subnet)).filter((c): c is Cidr => !!c);
}

export function isAllocated(n: Network): boolean {
  return !!n.IPAM?.Config?.length && n.VNI !== undefined;
}

/**
 * The subnet and VXLAN id of `n`: the asked-for subnet (gateway: its first host unless given), else
 * the lowest /24 of the pool that overlaps no other network; the lowest VXLAN id nobody holds.
 */
export function allocateNetwork(n: Network, others: readonly Network[]): Result<{ IPAM: { Config: IPAMConfig[] }; VNI: number }> {
  const rest = others.filter((o) => o.ID !== n.ID);
  let config = n.IPAM?.Config?.length ? n.IPAM.Config : n.Spec.IPAM.Config;
  if (!config?.length) {
    const pool = cidrOf(DEFAULT_POOL)!;
    const taken = rest.flatMap(subnetsOf);
    const step = 2 ** (32 - DEFAULT_SUBNET_PREFIX);
    let found: Cidr | null = null;
    for (let base = pool.base + POOL_FIRST_SUBNET * step; base < pool.base + 2 ** (32 - pool.prefix) && !found; base += step) {
      const c = { base, prefix: DEFAULT_SUBNET_PREFIX };
      if (!taken.some((t) => overlaps(t, c))) found = c;
    }
    if (!found) return { ok: false, message: `no free /${DEFAULT_SUBNET_PREFIX} left in the default pool ${DEFAULT_POOL}; give the network a --subnet` };
    config = [{ Subnet: formatCidr(found) }];
  }
  const full = config.map((c) => {
    const cidr = cidrOf(c.Subnet)!;
    return { Subnet: c.Subnet, Gateway: c.Gateway ?? formatIpv4(firstHost(cidr)) };
  });
  let vni = n.VNI;
  if (vni === undefined) {
    const used = new Set(rest.map((o) => o.VNI));
    for (let v = VNI_FIRST; v <= VNI_LAST && vni === undefined; v++) if (!used.has(v)) vni = v;
    if (vni === undefined) return { ok: false, message: 'no free VXLAN id left' };
  }
  return { ok: true, value: { IPAM: { Config: full }, VNI: vni } };
}

/** Whether a task still holds its addresses: until it has finished. */
export function holdsAddresses(t: Task): boolean {
  return !isTerminal(t.Status.State);
}

interface Pool { network: Network; cidr: Cidr; used: Set<number>; cursor: number }

/**
 * Addresses in use on every allocated network, for one allocator pass. `take` hands out the lowest
 * free address; `release` gives back one taken in this pass (a task that could not get all of its
 * networks).
 */
export class AddressBook {
  private pools = new Map<string, Pool>();

  constructor(networks: readonly Network[], services: readonly Service[], tasks: readonly Task[]) {
    for (const n of networks) {
      if (!isAllocated(n)) continue;
      const cfg = n.IPAM!.Config[0]!;
      const cidr = cidrOf(cfg.Subnet);
      if (!cidr) continue;
      const used = new Set<number>();
      const gw = cfg.Gateway ? addressOf(cfg.Gateway) : null;
      if (gw !== null) used.add(gw);
      this.pools.set(n.ID, { network: n, cidr, used, cursor: firstHost(cidr) });
    }
    for (const s of services) for (const v of s.Endpoint?.VirtualIPs ?? []) this.mark(v.NetworkID, v.Addr);
    for (const t of tasks) if (holdsAddresses(t)) for (const a of t.NetworksAttachments ?? []) for (const addr of a.Addresses) this.mark(a.Network.ID, addr);
  }

  private mark(networkId: string, addr: string): void {
    const ip = addressOf(addr);
    if (ip !== null) this.pools.get(networkId)?.used.add(ip);
  }

  network(id: string): Network | undefined {
    return this.pools.get(id)?.network;
  }

  /** `10.0.1.5/24`, or null when the network is unknown, unallocated or full. */
  take(networkId: string): string | null {
    const p = this.pools.get(networkId);
    if (!p) return null;
    for (let ip = p.cursor; ip <= lastHost(p.cidr); ip++) {
      if (p.used.has(ip)) continue;
      p.used.add(ip);
      p.cursor = ip + 1;
      return withPrefix(ip, p.cidr);
    }
    p.cursor = lastHost(p.cidr) + 1;
    return null;
  }

  /** Keep `addr` if it is on the network and free (a service keeping its VIP); false otherwise. */
  keep(networkId: string, addr: string): boolean {
    const p = this.pools.get(networkId);
    const ip = addressOf(addr);
    if (!p || ip === null || p.used.has(ip) || ip < firstHost(p.cidr) || ip > lastHost(p.cidr)) return false;
    p.used.add(ip);
    return true;
  }

  release(networkId: string, addr: string): void {
    const p = this.pools.get(networkId);
    const ip = addressOf(addr);
    if (!p || ip === null) return;
    p.used.delete(ip);
    if (ip < p.cursor) p.cursor = ip;
  }

  /** Forget what `service` holds, so that it can keep its own VIPs while being re-allocated. */
  forgetService(s: Service): void {
    for (const v of s.Endpoint?.VirtualIPs ?? []) this.release(v.NetworkID, v.Addr);
  }
}

function describeFull(book: AddressBook, id: string): string {
  const n = book.network(id);
  if (!n) return `network ${id} is not allocated yet`;
  return `network "${n.Spec.Name}" has no free address left in ${n.IPAM!.Config[0]!.Subnet}; remove tasks from it or create a larger network`;
}

/** A service's VIP on each of its networks (endpoint mode vip; none for dnsrr), keeping those it has. */
export function allocateVips(s: Service, book: AddressBook): Result<{ NetworkID: string; Addr: string }[]> {
  const targets = (s.Spec.TaskTemplate.Networks ?? []).map((n) => n.Target);
  if ((s.Spec.EndpointSpec?.Mode ?? 'vip') !== 'vip' || targets.length === 0) return { ok: true, value: [] };
  const prev = s.Endpoint?.VirtualIPs ?? [];
  book.forgetService(s);
  const out: { NetworkID: string; Addr: string }[] = [];
  for (const id of targets) {
    if (!book.network(id)) return rollback(book, out, prev, `network ${id} is not allocated yet or no longer exists`);
    const old = prev.find((v) => v.NetworkID === id);
    const addr = old && book.keep(id, old.Addr) ? old.Addr : book.take(id);
    if (!addr) return rollback(book, out, prev, describeFull(book, id));
    out.push({ NetworkID: id, Addr: addr });
  }
  return { ok: true, value: out };
}

/** Give back what this attempt took and hold again what the service had: it keeps its VIPs. */
function rollback<T>(book: AddressBook, taken: { NetworkID: string; Addr: string }[], had: { NetworkID: string; Addr: string }[], message: string): Result<T> {
  for (const v of taken) book.release(v.NetworkID, v.Addr);
  for (const v of had) book.keep(v.NetworkID, v.Addr);
  return { ok: false, message };
}

/** The attachment recorded on a task: the network as allocated now, and the task's address. */
export function attachmentOf(n: Network, addr: string): NetworkAttachment {
  return {
    Network: {
      ID: n.ID,
      Spec: { Name: n.Spec.Name, ...(n.Spec.Labels ? { Labels: n.Spec.Labels } : {}) },
      DriverState: { Name: 'overlay', Options: { [VXLAN_OPTION]: String(n.VNI) } },
      IPAMOptions: { Configs: n.IPAM!.Config },
    },
    Addresses: [addr],
  };
}

/** An address on each network of the task's spec, or why not (nothing is held then). */
export function allocateTask(t: Task, book: AddressBook): Result<NetworkAttachment[]> {
  const out: NetworkAttachment[] = [];
  for (const { Target } of t.Spec.Networks ?? []) {
    const n = book.network(Target);
    const addr = n ? book.take(Target) : null;
    if (!n || !addr) {
      for (const a of out) book.release(a.Network.ID, a.Addresses[0]!);
      return { ok: false, message: n ? describeFull(book, Target) : `network ${Target} is not allocated yet or no longer exists` };
    }
    out.push(attachmentOf(n, addr));
  }
  return { ok: true, value: out };
}
