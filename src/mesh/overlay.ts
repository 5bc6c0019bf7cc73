/**
 * Per-host plumbing of one overlay network: a Linux bridge with a VXLAN device as its uplink, a veth
 * per local task, and static forwarding for remote tasks. Every method brings the host to the wanted
 * state whatever state it is in (idempotent), so a caller can simply call it again after a restart
 * or a failure. The worker's NetworkAgent drives it: the caller gives it the network and the forwarding
 * table (which task address lives behind which host).
 *
 *   task netns ── veth ──┐
 *   task netns ── veth ──┤ bridge (gateway address) ── vxlan (VNI, local underlay IP, nolearning, proxy)
 *                        │                                 │ FDB: task MAC → remote host; 00:… → each host
 *                        │                                 │ neighbours: remote task IP → MAC (ARP answered here)
 *
 * No learning and no multicast: every remote task's MAC and host are known from the store, so the
 * VXLAN device is told (FDB) and answers ARP itself from its neighbour table (`proxy`), as Docker's
 * overlay driver does. Task MACs derive from their address (02:42 + the four bytes), so a forwarding
 * entry needs only the two addresses.
 */
import { createHash } from 'node:crypto';
import { addressOf, contains, parseCidr, parseIpv4 } from '../lib/cidr.ts';
import { MeshConfigError } from './errors.ts';
import { hostRunner, jsonOf, must, type NetnsRef, OverlayCommandError, type Runner, tolerate } from './netlink-cmd.ts';

export const VXLAN_PORT = 4789;
/** 1500 less the VXLAN encapsulation (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const OVERLAY_MTU = 1450;

export interface OverlaySpec {
  /** The network's ID: device names derive from it. */
  id: string;
  subnet: string;
  /** Put on the bridge, so that this host is reachable from its tasks. Absent: none. */
  gateway?: string;
  vni: number;
  /** This host's underlay address: VXLAN packets leave from it and remote hosts send to it. */
  local: string;
  dstPort?: number;
  mtu?: number;
}

/** A task on the network: behind which host its address lives. */
export interface ForwardingEntry { hostAddr: string; taskAddr: string; mac?: string }

export interface TaskAttachment {
  taskId: string;
  netns: NetnsRef;
  /** `10.0.1.5/24`, as the allocator records it. */
  address: string;
  mac?: string;
  /** The interface's name inside the task's namespace (default `ov<VNI>`). */
  ifname?: string;
}

const ZERO_MAC = '00:00:00:00:00:00';
const GONE = /Cannot find device|does not exist|No such device/i;

/** Docker's convention: 02:42 then the IPv4 address. */
export function macFor(addr: string): string {
  const ip = addressOf(addr);
  if (ip === null) throw new MeshConfigError(`overlay: "${addr}" is not an IPv4 address`);
  return ['02', '42', ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 8);
}

/** Interface names (at most 15 bytes) of a network's devices on a host. */
export function deviceNames(networkId: string): { bridge: string; vxlan: string } {
  const h = shortHash(networkId);
  return { bridge: `shb-${h}`, vxlan: `shx-${h}` };
}

/**
 * The bridge's own MAC: fixed, one per network and host (its underlay address). A Linux bridge
 * without an address set takes the lowest MAC among its ports and changes it as ports come and go:
 * when a container's veth left, the gateway's MAC changed under the tasks' ARP caches, and their
 * packets to the gateway (DNS, the outside) went nowhere until those entries expired (seen in
 * test/netns/overlay-runtimes.test.ts). `06:` is locally administered unicast, apart from the tasks'
 * `02:42:` + address.
 */
export function bridgeMac(networkId: string, local: string): string {
  const h = createHash('sha256').update(`${networkId}\0${local}`).digest('hex');
  return ['06', ...[0, 2, 4, 6, 8].map((i) => h.slice(i, i + 2))].join(':');
}

interface LinkJson { ifname: string; address?: string; master?: string; linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean; proxy?: boolean } } }
interface FdbJson { mac: string; dst?: string; master?: string }
interface NeighJson { dst: string; lladdr?: string }

export class OverlayNetwork {
  readonly bridge: string;
  readonly vxlan: string;
  private readonly prefix: number;
  private chain: Promise<unknown> = Promise.resolve();
  /** The last table given to setForwarding: put back on a VXLAN device that ensure() re-creates. */
  private forwarding: readonly ForwardingEntry[] | null = null;

  /**
   * `run` runs a command in the host's namespace; `runIn(ns)` one inside a task's namespace.
   */
  constructor(readonly spec: OverlaySpec, private readonly run: Runner = hostRunner(), private readonly runIn: (ns: NetnsRef) => Runner = hostRunner) {
    const c = parseCidr(spec.subnet);
    if (typeof c === 'string') throw new MeshConfigError(`overlay subnet: ${c}`);
    if (!Number.isInteger(spec.vni) || spec.vni < 1 || spec.vni > 2 ** 24 - 1) throw new MeshConfigError(`overlay: VNI ${spec.vni} is outside 1-16777215`);
    if (addressOf(spec.local) === null) throw new MeshConfigError(`overlay: local address "${spec.local}" is not an IPv4 address`);
    this.prefix = c.prefix;
    ({ bridge: this.bridge, vxlan: this.vxlan } = deviceNames(spec.id));
  }

  private get mtu(): number {
    return this.spec.mtu ?? OVERLAY_MTU;
  }

  /** Calls on one network never interleave (each reads the state, then changes it). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }

  private async link(name: string, run = this.run): Promise<LinkJson | undefined> {
    return (await jsonOf<LinkJson>(run, ['ip', '-d', '-j', 'link', 'show', 'dev', name]))[0];
  }

  /**
   * The bridge and the VXLAN device, up, with the gateway address. A VXLAN device set up differently
   * is replaced, and gets the last forwarding table again.
   */
  ensure(): Promise<void> {
    return this.serial(async () => {
      const { run, bridge, vxlan, spec } = this;
      const port = spec.dstPort ?? VXLAN_PORT;
      const mac = bridgeMac(spec.id, spec.local);
      const br = await this.link(bridge);
      if (!br) await must(run, ['ip', 'link', 'add', bridge, 'address', mac, 'type', 'bridge']);
      else if (br.address?.toLowerCase() !== mac) await must(run, ['ip', 'link', 'set', bridge, 'address', mac]);
      let vx = await this.link(vxlan);
      const d = vx?.linkinfo?.info_data;
      if (vx && (vx.linkinfo?.info_kind !== 'vxlan' || d?.id !== spec.vni || d?.local !== spec.local || d?.port !== port || d?.learning !== false || d?.proxy !== true)) {
        await tolerate(run, ['ip', 'link', 'del', vxlan], GONE);
        vx = undefined;
      }
      if (!vx) {
        const add = ['ip', 'link', 'add', vxlan, 'mtu', String(this.mtu), 'type', 'vxlan', 'id', String(spec.vni), 'dstport', String(port), 'local', spec.local, 'nolearning', 'proxy'];
        const r = await run(add);
        if (r.code !== 0 && /VNI already exists/i.test(r.stderr)) {
          // A shoal VXLAN device of a network that is gone (a daemon killed before it cleaned up, or
          // another cluster's on this host) holds the VNI: one shoal daemon per host owns them all.
          const taken = (await jsonOf<LinkJson>(run, ['ip', '-d', '-j', 'link', 'show', 'type', 'vxlan']))
            .filter((l) => l.ifname.startsWith('shx-') && l.ifname !== vxlan && l.linkinfo?.info_data?.id === spec.vni);
          for (const l of taken) await tolerate(run, ['ip', 'link', 'del', l.ifname], GONE);
          if (taken.length === 0) throw new OverlayCommandError(add, r);
          await must(run, add);
        } else if (r.code !== 0) {
          throw new OverlayCommandError(add, r);
        }
      }
      await must(run, ['ip', 'link', 'set', vxlan, 'master', bridge]);
      await must(run, ['ip', 'link', 'set', vxlan, 'up']);
      await must(run, ['ip', 'link', 'set', bridge, 'up']);
      if (spec.gateway) {
        await this.removeStaleBridges();
        await must(run, ['ip', 'addr', 'replace', `${spec.gateway}/${this.prefix}`, 'dev', bridge]);
      }
      if (!vx && this.forwarding) await this.applyForwarding(this.forwarding);
    });
  }

  /**
   * Another shoal bridge holding an address in this subnet (left by a daemon that was killed, or a
   * cluster this host left) would take the subnet's route: it goes. One shoal daemon per network
   * namespace owns every `shb-`/`shx-` device in it.
   */
  private async removeStaleBridges(): Promise<void> {
    const c = parseCidr(this.spec.subnet);
    if (typeof c === 'string') return;
    const links = await jsonOf<{ ifname: string; addr_info?: { family?: string; local?: string }[] }>(this.run, ['ip', '-j', 'addr', 'show', 'type', 'bridge']);
    for (const l of links) {
      if (!l.ifname.startsWith('shb-') || l.ifname === this.bridge) continue;
      const clash = (l.addr_info ?? []).some((a) => a.family === 'inet' && a.local !== undefined && contains(c, parseIpv4(a.local) ?? -1));
      if (clash) await tolerate(this.run, ['ip', 'link', 'del', l.ifname], GONE);
    }
  }

  /**
   * Make the VXLAN device's forwarding match `entries` (tasks on other hosts; entries whose host is
   * this one are skipped): a FDB entry per task MAC and a flooding entry per remote host, a permanent
   * neighbour entry per task address. Entries no longer listed are removed.
   */
  setForwarding(entries: readonly ForwardingEntry[]): Promise<void> {
    return this.serial(async () => {
      await this.applyForwarding(entries);
      this.forwarding = [...entries];
    });
  }

  private async applyForwarding(entries: readonly ForwardingEntry[]): Promise<void> {
    const { run, vxlan } = this;
    const remote = entries.filter((e) => e.hostAddr !== this.spec.local);
    const wantFdb = new Map<string, string>(); // mac → host
    const wantNeigh = new Map<string, string>(); // ip → mac
    const hosts = new Set<string>();
    for (const e of remote) {
      const ip = e.taskAddr.split('/')[0]!;
      const mac = (e.mac ?? macFor(ip)).toLowerCase();
      wantFdb.set(mac, e.hostAddr);
      wantNeigh.set(ip, mac);
      hosts.add(e.hostAddr);
    }
    const fdb = (await jsonOf<FdbJson>(run, ['bridge', '-j', 'fdb', 'show', 'dev', vxlan])).filter((f) => f.dst && !f.master);
    for (const f of fdb) {
      const stale = f.mac === ZERO_MAC ? !hosts.has(f.dst!) : wantFdb.get(f.mac) !== f.dst;
      if (stale) await tolerate(run, ['bridge', 'fdb', 'del', f.mac, 'dev', vxlan, 'dst', f.dst!, 'self'], /No such file|not found/i);
    }
    for (const [mac, host] of wantFdb) {
      if (!fdb.some((f) => f.mac === mac && f.dst === host)) await must(run, ['bridge', 'fdb', 'replace', mac, 'dev', vxlan, 'dst', host, 'self', 'permanent']);
    }
    for (const host of hosts) {
      if (!fdb.some((f) => f.mac === ZERO_MAC && f.dst === host)) await must(run, ['bridge', 'fdb', 'append', ZERO_MAC, 'dev', vxlan, 'dst', host, 'self', 'permanent']);
    }
    const neigh = await jsonOf<NeighJson>(run, ['ip', '-j', 'neigh', 'show', 'dev', vxlan]);
    for (const n of neigh) if (!wantNeigh.has(n.dst)) await tolerate(run, ['ip', 'neigh', 'del', n.dst, 'dev', vxlan], /No such file|not found/i);
    for (const [ip, mac] of wantNeigh) {
      if (!neigh.some((n) => n.dst === ip && n.lladdr === mac)) await must(run, ['ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev', vxlan, 'nud', 'permanent']);
    }
  }

  /** Host-side and (before it moves) task-side names of a task's veth pair. */
  vethNames(taskId: string): { host: string; peer: string } {
    const h = shortHash(this.spec.id, taskId);
    return { host: `shv-${h}`, peer: `shp-${h}` };
  }

  /** A veth from the bridge into the task's namespace, with the task's address and MAC, up. */
  attach(t: TaskAttachment): Promise<void> {
    return this.serial(async () => {
      const { run, bridge } = this;
      const ns = this.runIn(t.netns);
      const { host, peer } = this.vethNames(t.taskId);
      const ifname = t.ifname ?? `ov${this.spec.vni}`;
      const mtu = String(this.mtu);
      if (!(await this.link(host))) {
        await must(run, ['ip', 'link', 'add', host, 'mtu', mtu, 'type', 'veth', 'peer', 'name', peer, 'mtu', mtu]);
      }
      if (await this.link(peer)) await must(run, ['ip', 'link', 'set', peer, 'netns', 'name' in t.netns ? t.netns.name : String(t.netns.pid)]);
      if (!(await this.link(ifname, ns))) await must(ns, ['ip', 'link', 'set', peer, 'name', ifname]);
      await must(ns, ['ip', 'link', 'set', ifname, 'address', (t.mac ?? macFor(t.address)).toLowerCase()]);
      await must(ns, ['ip', 'addr', 'replace', t.address, 'dev', ifname]);
      await must(ns, ['ip', 'link', 'set', ifname, 'up']);
      await must(ns, ['ip', 'link', 'set', 'lo', 'up']);
      await must(run, ['ip', 'link', 'set', host, 'master', bridge]);
      await must(run, ['ip', 'link', 'set', host, 'up']);
    });
  }

  /** Remove a task's veth (both ends go with it). Nothing to do when it is already gone. */
  detach(taskId: string): Promise<void> {
    return this.serial(() => tolerate(this.run, ['ip', 'link', 'del', this.vethNames(taskId).host], GONE));
  }

  /** Every device of the network on this host: task veths, the VXLAN device, the bridge. */
  remove(): Promise<void> {
    return this.serial(async () => {
      const ports = await jsonOf<LinkJson>(this.run, ['ip', '-j', 'link', 'show', 'master', this.bridge]);
      for (const p of ports) await tolerate(this.run, ['ip', 'link', 'del', p.ifname], GONE);
      await tolerate(this.run, ['ip', 'link', 'del', this.vxlan], GONE);
      await tolerate(this.run, ['ip', 'link', 'del', this.bridge], GONE);
    });
  }
}
