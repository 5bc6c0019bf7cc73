/**
 * The host side of overlay networks (issue 6): what the worker does for the networks of the tasks
 * it runs. Fed by three sources and driving `OverlayNetwork`, `EmbeddedDns` and the VIP rules:
 *
 *   dispatcher `networks` frame  → networks (subnet, gateway, VNI), services' VIPs and task addresses
 *   gossip (HostGossip)          → which remote host each task address lives behind (forwarding)
 *   the task runners             → prepare (before the controller), started (pid), release
 *
 * Per network with a task here: the bridge + VXLAN device (`OverlayNetwork.ensure`), the forwarding
 * table from gossip, and an embedded DNS server on the gateway address (port 53), which is every
 * task's resolver. Per task of an executor without isolation (processes): a network namespace
 * `shtask-<task id>` with a veth on each of its networks and a default route through the first
 * gateway. Per task with a namespace (that one, or a container's): the VIP rules, kernel DNAT in the
 * task's own namespace (see docs/mesh.md for why not a userspace proxy or IPVS). Per network, for the
 * clients that have no such rules (a VM, whose QEMU shares the host's namespace; a container before
 * its rules are written): the host path, the VIPs as /32 addresses on the bridge (the host answers
 * ARP for them) and DNAT in the host's PREROUTING from the bridge, where bridged traffic passes
 * iptables (br_netfilter), so that replies that come back at L2 are translated back.
 *
 * Everything is idempotent and serialised, so the same calls after a daemon restart (the runner
 * prepares recovered tasks again) find the plumbing in place.
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.ts';
import type { TaskNetwork, TaskNetworkAttachment } from '../executor/contract.ts';
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import { type Task, VXLAN_OPTION } from '../types/index.ts';
import { EmbeddedDns, type ServiceRecord } from './dns.ts';
import { hostRunner, jsonOf, must, type NetnsRef, nsPrefix, type Runner, tolerate } from './netlink-cmd.ts';
import { type ForwardingEntry, macFor, OVERLAY_MTU, OverlayNetwork } from './overlay.ts';

export interface NetworkAgentOptions {
  /** This host's underlay address (VXLAN packets leave from it); undefined while unknown. */
  underlay: () => string | undefined;
  /** Where each remote task address lives, per network (from gossip). */
  remote: (networkId: string) => ForwardingEntry[];
  /** Commands in the host's namespace / in another one (tests stand a namespace in for a host). */
  run?: Runner;
  runIn?: (ns: NetnsRef) => Runner;
  /** The DNS servers' port on the gateways. Default 53 (a resolv.conf cannot name another). */
  dnsPort?: number;
  /**
   * Where the networks set up on this host are remembered (JSON), so that a later daemon removes
   * those the cluster deleted meanwhile. Absent: not remembered.
   */
  stateFile?: string;
  /** This host's local task addresses changed (announce them). */
  onLocalChange?: () => void;
  log?: (msg: string) => void;
}

/** What the state file keeps of a network set up on this host. */
interface RememberedNet { id: string; name: string; subnet: string; gateway: string; vni: number; local: string }

interface NetState {
  id: string;
  name: string;
  subnet: string;
  gateway: string;
  vni: number;
  overlay: OverlayNetwork;
  dns: EmbeddedDns | null;
  /** The host path's last rules written, whether its jumps are known to be in place, and the VIPs last put on the bridge. */
  hostRules?: string;
  hostJumps?: boolean;
  hostAddrs?: string;
}

interface LocalTask {
  id: string;
  /** network id → address with prefix */
  nets: Map<string, string>;
  /** The namespace the VIP rules go into: ours (processes) or the task's own (a container's pid). */
  ns: NetnsRef | null;
  /** We made the namespace (and delete it on release). */
  ownNs: boolean;
  /** The last VIP rules written into `ns` and whether the OUTPUT jump is known to be there. */
  rules: string | null;
  jump: boolean;
}

const NS_GONE = /No such file|does not exist|Cannot (open|find)|Invalid argument/i;
const CHAIN = 'SHOAL-VIP';

/** The comment that tells the worker's host firewall rules from Docker's (see hostFirewallRules). */
export const FIREWALL_COMMENT = 'shoal overlay';

/**
 * The host firewall rules of a network's bridge, as [table, chain, ...rule]. Each carries a comment
 * of its own: Docker's bridge driver, bound to the same bridge by a container's Docker network,
 * writes exactly these rules without one, checks with -C before adding them, and deletes them with
 * -D when its network goes (after the last container on it). Identical rules were ours: with the
 * last container, the bridge lost its FORWARD accepts and its masquerade while process tasks were
 * still on it, and their traffic was dropped (FORWARD's policy is DROP). Measured on Docker 20.10.
 */
export function hostFirewallRules(bridge: string, subnet: string, internal: boolean): string[][] {
  const mark = ['-m', 'comment', '--comment', FIREWALL_COMMENT];
  const rules = [['filter', 'FORWARD', '-i', bridge, '-o', bridge, ...mark, '-j', 'ACCEPT']];
  if (!internal) {
    rules.push(
      ['filter', 'FORWARD', '-i', bridge, '!', '-o', bridge, ...mark, '-j', 'ACCEPT'],
      ['filter', 'FORWARD', '-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...mark, '-j', 'ACCEPT'],
      ['nat', 'POSTROUTING', '-s', subnet, '!', '-o', bridge, ...mark, '-j', 'MASQUERADE'],
    );
  }
  return rules;
}

/** The chains of a network's host-side VIP path, named after its bridge (iptables allows 28 characters). */
export function hostVipChains(bridge: string): { dnat: string; masq: string; drop: string } {
  const h = bridge.replace(/^shb-/, '');
  return { dnat: `SHOAL-HVIP-${h}`, masq: `SHOAL-HMASQ-${h}`, drop: `SHOAL-HDROP-${h}` };
}

/**
 * The jumps into a network's host VIP chains, as [table, chain, ...rule], each with the comment of
 * the host firewall rules: DNAT of what comes from the bridge, masquerade of what goes out to it (a
 * client that is its own backend), and a drop of what reaches the host itself at a VIP of the subnet.
 */
export function hostVipJumps(bridge: string, subnet: string): string[][] {
  const { dnat, masq, drop } = hostVipChains(bridge);
  const mark = ['-m', 'comment', '--comment', FIREWALL_COMMENT];
  return [
    ['nat', 'PREROUTING', '-i', bridge, ...mark, '-j', dnat],
    ['nat', 'POSTROUTING', '-o', bridge, ...mark, '-j', masq],
    ['filter', 'INPUT', '-d', subnet, ...mark, '-j', drop],
  ];
}

/** Each VIP of a `vip`-mode service on network `net`, with its service's running tasks there. */
function vipBackends(table: NetTable, net: string): { vip: string; backends: string[] }[] {
  const out: { vip: string; backends: string[] }[] = [];
  for (const s of table.services) {
    if (s.mode !== 'vip') continue;
    for (const v of s.vips) if (v.net === net) out.push({ vip: v.addr, backends: s.tasks.filter((t) => t.net === net).map((t) => t.addr) });
  }
  return out;
}

/**
 * DNAT of a VIP (any port) to one of `backends`, spread evenly: each rule takes 1/(remaining) of what
 * reaches it (1/n, 1/(n-1), …, 1), as kube-proxy's iptables mode does. No backend: no rule.
 */
function spreadRules(chain: string, vip: string, backends: readonly string[]): string[] {
  return backends.map((b, i) => {
    const left = backends.length - i;
    const spread = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
    return `-A ${chain} -d ${vip}/32${spread} -j DNAT --to-destination ${b}`;
  });
}

/** The VIPs the host answers for on a network's bridge (its `vip`-mode services' VIPs there). */
export function hostVips(table: NetTable, net: string): string[] {
  return [...new Set(vipBackends(table, net).map((v) => v.vip))].sort();
}

/**
 * The host path of network `net` (iptables-restore input, applied with --noflush: only these chains
 * are rewritten, at once). nat: DNAT of each VIP to its service's tasks as in a task's own rules
 * (the jump matches only what comes in from the bridge); masquerade of a connection DNATed back to
 * its own source (a client that is one of the service's tasks: without it the reply would come from
 * its own address, which it drops). filter: what still reaches the host at a VIP (a service with no
 * running task) is dropped, so that it times out as it does from a task namespace, instead of being
 * answered by the host's own sockets.
 */
export function hostVipRules(table: NetTable, net: string, bridge: string): string {
  const { dnat, masq, drop } = hostVipChains(bridge);
  const vips = vipBackends(table, net);
  const lines = ['*nat', `:${dnat} - [0:0]`, `:${masq} - [0:0]`];
  for (const v of vips) lines.push(...spreadRules(dnat, v.vip, v.backends));
  for (const b of [...new Set(vips.flatMap((v) => v.backends))].sort()) {
    lines.push(`-A ${masq} -s ${b}/32 -d ${b}/32 -m conntrack --ctstate DNAT -j MASQUERADE`);
  }
  lines.push('COMMIT', '*filter', `:${drop} - [0:0]`);
  for (const vip of hostVips(table, net)) lines.push(`-A ${drop} -d ${vip}/32 -j DROP`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The namespace a task without isolation runs in. */
export function sandboxName(taskId: string): string {
  return `shtask-${taskId.slice(0, 20)}`;
}

export class NetworkAgent {
  readonly #o: NetworkAgentOptions;
  readonly #run: Runner;
  readonly #runIn: (ns: NetnsRef) => Runner;
  readonly #nets = new Map<string, NetState>();
  readonly #tasks = new Map<string, LocalTask>();
  #table: NetTable = { networks: [], services: [] };
  #tableSeen = false;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  #warned = new Set<string>();
  /**
   * Networks an earlier daemon set up here that the cluster still has but no task here uses yet:
   * kept in the state file, so that their devices go when the cluster deletes them.
   */
  readonly #dormant = new Map<string, RememberedNet>();
  /**
   * Local task addresses without VIP rules (VMs) where the host path is not available: the DNS answers
   * them task addresses for a service.
   */
  readonly #vipless = new Set<string>();
  /** Whether this host's bridges can carry VIPs (#hostPath), once known. */
  #hostPathOk: boolean | undefined;

  constructor(opts: NetworkAgentOptions) {
    this.#o = opts;
    this.#run = opts.run ?? hostRunner();
    this.#runIn = opts.runIn ?? hostRunner;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(fn, fn);
    this.#chain = next.catch(() => {});
    return next;
  }

  #warnOnce(key: string, msg: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#o.log?.(msg);
  }

  /** Local task addresses per network (what this host announces). */
  localNets(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const t of this.#tasks.values()) for (const [net, addr] of t.nets) (out[net] ??= []).push(addr.split('/')[0]!);
    for (const list of Object.values(out)) list.sort();
    return out;
  }

  /** Networks set up on this host (for status and tests). */
  networks(): { id: string; name: string; bridge: string; gateway: string; dns: boolean }[] {
    return [...this.#nets.values()].map((n) => ({ id: n.id, name: n.name, bridge: n.overlay.bridge, gateway: n.gateway, dns: !!n.dns }));
  }

  /** The dispatcher's table: DNS names and VIP rules follow it; networks gone from it are removed here. */
  setTable(table: NetTable): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      this.#table = table;
      if (!this.#tableSeen) for (const old of this.#remembered()) if (!this.#nets.has(old.id)) this.#dormant.set(old.id, old);
      this.#tableSeen = true;
      await this.#removeGone([...this.#nets.keys(), ...this.#dormant.keys()]);
      for (const n of this.#nets.values()) await this.#refreshDns(n);
      for (const n of this.#nets.values()) await this.#applyHostVips(n);
      for (const t of this.#tasks.values()) await this.#applyRules(t);
    });
  }

  /** Gossip changed: rewrite the forwarding of every network set up here. */
  refreshForwarding(): Promise<void> {
    return this.#serial(async () => {
      for (const n of this.#nets.values()) await this.#forward(n);
    });
  }

  /**
   * Before the task's controller is made: its networks set up here, and for an executor without
   * isolation a namespace with the task's interfaces. Throws with a message naming what is missing.
   */
  prepare(task: Task, isolation: boolean): Promise<TaskNetwork | undefined> {
    const atts = task.NetworksAttachments ?? [];
    if (atts.length === 0) return Promise.resolve(undefined);
    return this.#serial(async () => {
      if (this.#closed) throw new Error('the worker is stopping');
      const underlay = this.#o.underlay();
      if (!underlay) throw new Error('overlay networks need this host\'s underlay address (start the daemon with --advertise-addr)');
      const attachments: TaskNetworkAttachment[] = [];
      const nets = new Map<string, string>();
      for (const a of atts) {
        const cfg = a.Network.IPAMOptions.Configs[0];
        const vni = Number(a.Network.DriverState.Options[VXLAN_OPTION]);
        const address = a.Addresses[0];
        if (!cfg?.Subnet || !cfg.Gateway || !Number.isInteger(vni) || !address) throw new Error(`network ${a.Network.Spec.Name}: the task's attachment is not allocated`);
        const gateway = cfg.Gateway.split('/')[0]!;
        const n = await this.#ensureNet({ id: a.Network.ID, name: a.Network.Spec.Name, subnet: cfg.Subnet, gateway, vni }, underlay);
        attachments.push({ networkId: n.id, name: n.name, bridge: n.overlay.bridge, subnet: n.subnet, gateway, address, mac: macFor(address), mtu: OVERLAY_MTU });
        nets.set(n.id, address);
      }
      const t: LocalTask = this.#tasks.get(task.ID) ?? { id: task.ID, nets, ns: null, ownNs: false, rules: null, jump: false };
      t.nets = nets;
      this.#tasks.set(task.ID, t);
      await this.#refreshViews(t);
      let netns: string | undefined;
      if (!isolation) {
        const name = sandboxName(task.ID);
        // Named namespaces are global (/run/netns); made from this process's mount namespace, where
        // the name's bind mount is seen by everyone (not through `run`, which may enter another).
        await tolerate(hostRunner(), ['ip', 'netns', 'add', name], /File exists/);
        t.ns = { name };
        t.ownNs = true;
        for (const a of attachments) {
          await this.#nets.get(a.networkId)!.overlay.attach({ taskId: task.ID, netns: t.ns, address: a.address, mac: a.mac, ifname: `eth${attachments.indexOf(a)}` });
        }
        await tolerate(this.#runIn(t.ns), ['ip', 'route', 'replace', 'default', 'via', attachments[0]!.gateway], /File exists/);
        netns = `/run/netns/${name}`;
        await this.#applyRules(t);
      }
      this.#o.onLocalChange?.();
      return { attachments, dns: [attachments[0]!.gateway], ...(netns ? { netns } : {}) };
    });
  }

  /**
   * The task's main process `pid` exists (from its executor once its namespace exists, before a
   * health check, and again on "running"): a task with a namespace of its own gets its VIP rules
   * there. Idempotent: once the namespace is known, later calls change nothing.
   */
  started(taskId: string, pid: number | undefined): Promise<void> {
    return this.#serial(async () => {
      const t = this.#tasks.get(taskId);
      if (!t || t.ns || !pid) return;
      // A VM's QEMU runs in the host's namespace: rules there would route the host itself. Only a
      // process in a namespace of its own (a container) gets them.
      const [mine, its] = await Promise.all([readlink('/proc/self/ns/net').catch(() => ''), readlink(`/proc/${pid}/ns/net`).catch(() => '')]);
      if (its && its === mine) {
        // No namespace to put VIP rules in (a VM): the host path carries its VIP traffic (its tap
        // gets hairpin there); without one, its DNS answers are task addresses instead.
        if (await this.#hostPath()) {
          for (const net of t.nets.keys()) {
            const n = this.#nets.get(net);
            if (n) await this.#applyHostVips(n, true);
          }
        } else {
          for (const a of t.nets.values()) this.#vipless.add(a.split('/')[0]!);
        }
        return;
      }
      if (!its) return;
      t.ns = { pid };
      await this.#applyRules(t);
    });
  }

  /** The task left this host: its namespace and veths go; its network stays while the cluster has it. */
  release(taskId: string): Promise<void> {
    return this.#serial(async () => {
      const t = this.#tasks.get(taskId);
      if (!t) {
        // Not prepared by this daemon: a task that was stopped when the previous one stopped (it is
        // terminal, so nothing prepared it again) may have left its namespace; it goes with the task.
        const name = sandboxName(taskId);
        if (existsSync(`/run/netns/${name}`)) await tolerate(hostRunner(), ['ip', 'netns', 'del', name], NS_GONE).catch((e) => this.#o.log?.(`network: ${errorMessage(e)}`));
        return;
      }
      await this.#releaseTask(t);
      this.#o.onLocalChange?.();
      await this.#removeGone(t.nets.keys());
    });
  }

  /**
   * Of these networks, those the cluster no longer has (once its table is known) and no local task
   * uses: their devices and rules go.
   */
  async #removeGone(ids: Iterable<string>): Promise<void> {
    if (!this.#tableSeen) return;
    const known = new Set(this.#table.networks.map((n) => n.id));
    for (const id of [...ids]) {
      if (known.has(id) || [...this.#tasks.values()].some((t) => t.nets.has(id))) continue;
      const n = this.#nets.get(id) ?? this.#fromMemory(this.#dormant.get(id));
      this.#dormant.delete(id);
      if (n) await this.#removeNet(n).catch((e) => this.#o.log?.(`network ${n.name}: remove: ${errorMessage(e)}`));
    }
  }

  #fromMemory(old: RememberedNet | undefined): NetState | undefined {
    if (!old) return undefined;
    const overlay = new OverlayNetwork({ id: old.id, subnet: old.subnet, gateway: old.gateway, vni: old.vni, local: old.local }, this.#run, this.#runIn);
    return { ...old, overlay, dns: null };
  }

  /** A task on several networks resolves the names of all of them (see #clientViews). */
  async #refreshViews(t: LocalTask): Promise<void> {
    if (t.nets.size < 2) return;
    for (const net of t.nets.keys()) {
      const n = this.#nets.get(net);
      if (n) await this.#refreshDns(n);
    }
  }

  async #releaseTask(t: LocalTask): Promise<void> {
    this.#tasks.delete(t.id);
    // A task on several networks had a view of its own in their DNS servers: it goes.
    if (!this.#closed) await this.#refreshViews(t);
    for (const a of t.nets.values()) this.#vipless.delete(a.split('/')[0]!);
    for (const net of t.nets.keys()) await this.#nets.get(net)?.overlay.detach(t.id).catch((e) => this.#o.log?.(`network: detach ${t.id}: ${errorMessage(e)}`));
    if (t.ownNs && t.ns && 'name' in t.ns) await tolerate(hostRunner(), ['ip', 'netns', 'del', t.ns.name], NS_GONE).catch((e) => this.#o.log?.(`network: ${errorMessage(e)}`));
  }

  /**
   * Stop the DNS servers. The plumbing stays for tasks that outlive the daemon; with `removeIdle`
   * (the daemon stopped its tasks), networks without a local task go (devices, rules).
   */
  close(opts: { removeIdle?: boolean } = {}): Promise<void> {
    return this.#serial(async () => {
      this.#closed = true;
      if (opts.removeIdle) {
        // The tasks were stopped: their namespaces and interfaces go with them.
        for (const t of [...this.#tasks.values()]) await this.#releaseTask(t);
      }
      for (const n of [...this.#nets.values()]) {
        n.dns?.stop();
        if (opts.removeIdle) await this.#removeNet(n);
      }
      if (opts.removeIdle) {
        for (const old of [...this.#dormant.values()]) {
          this.#dormant.delete(old.id);
          await this.#removeNet(this.#fromMemory(old)!).catch((e) => this.#o.log?.(`network ${old.name}: remove: ${errorMessage(e)}`));
        }
      }
    });
  }

  #remembered(): RememberedNet[] {
    if (!this.#o.stateFile) return [];
    try {
      const list = JSON.parse(readFileSync(this.#o.stateFile, 'utf8'));
      return Array.isArray(list) ? list.filter((x) => x && typeof x.id === 'string' && typeof x.subnet === 'string' && typeof x.local === 'string') : [];
    } catch {
      return [];
    }
  }

  #remember(): void {
    if (!this.#o.stateFile) return;
    const list: RememberedNet[] = [
      ...[...this.#nets.values()].map((n) => ({ id: n.id, name: n.name, subnet: n.subnet, gateway: n.gateway, vni: n.vni, local: n.overlay.spec.local })),
      ...this.#dormant.values(),
    ];
    try {
      writeFileSync(`${this.#o.stateFile}.tmp`, JSON.stringify(list));
      renameSync(`${this.#o.stateFile}.tmp`, this.#o.stateFile);
    } catch (e) {
      this.#warnOnce('state', `networks: cannot remember them in ${this.#o.stateFile}: ${errorMessage(e)}`);
    }
  }

  async #ensureNet(spec: { id: string; name: string; subnet: string; gateway: string; vni: number }, underlay: string): Promise<NetState> {
    let n = this.#nets.get(spec.id);
    if (n && (n.vni !== spec.vni || n.subnet !== spec.subnet || n.overlay.spec.local !== underlay)) {
      n.dns?.stop();
      this.#nets.delete(spec.id);
      n = undefined;
    }
    if (!n) {
      this.#dormant.delete(spec.id);
      const overlay = new OverlayNetwork({ id: spec.id, subnet: spec.subnet, gateway: spec.gateway, vni: spec.vni, local: underlay }, this.#run, this.#runIn);
      n = { ...spec, overlay, dns: null };
      this.#nets.set(spec.id, n);
      this.#remember();
    }
    await n.overlay.ensure();
    await this.#hostRules(n, true);
    await this.#forward(n);
    await this.#refreshDns(n);
    // Checked again at every prepare: the bridge may have been made anew (its addresses gone), and
    // the task may bring a tap.
    n.hostJumps = false;
    n.hostRules = undefined;
    n.hostAddrs = undefined;
    await this.#applyHostVips(n, true);
    return n;
  }

  async #forward(n: NetState): Promise<void> {
    const entries = this.#o.remote(n.id);
    await n.overlay.setForwarding(entries).catch((e) => this.#o.log?.(`network ${n.name}: forwarding: ${errorMessage(e)}`));
  }

  /** The names network `net`'s tasks see: each service there, by its VIP on it or its task addresses. */
  #records(net: string): ServiceRecord[] {
    const out: ServiceRecord[] = [];
    for (const s of this.#table.services) {
      const vips = s.vips.filter((v) => v.net === net).map((v) => v.addr);
      const taskAddrs = s.tasks.filter((t) => t.net === net).map((t) => t.addr);
      if (vips.length === 0 && taskAddrs.length === 0) continue;
      const mode = s.mode === 'vip' && vips.length > 0 ? 'vip' : 'dnsrr';
      out.push({ name: s.name, mode, ...(mode === 'vip' ? { vips } : {}), taskAddrs });
    }
    return out;
  }

  /**
   * What the local tasks on several networks see when they ask network `n`'s DNS (the first of their
   * networks, their resolver): the names of all their networks, `n`'s first when a name is on two.
   */
  #clientViews(n: NetState): Map<string, ServiceRecord[]> {
    const views = new Map<string, ServiceRecord[]>();
    for (const t of this.#tasks.values()) {
      const addr = t.nets.get(n.id);
      if (!addr || t.nets.size < 2) continue;
      const records = this.#records(n.id);
      const have = new Set(records.map((r) => r.name.toLowerCase()));
      for (const net of t.nets.keys()) {
        if (net === n.id) continue;
        for (const r of this.#records(net)) if (!have.has(r.name.toLowerCase())) { have.add(r.name.toLowerCase()); records.push(r); }
      }
      views.set(addr.split('/')[0]!, records);
    }
    return views;
  }

  async #refreshDns(n: NetState): Promise<void> {
    try {
      if (!n.dns) {
        const dns = new EmbeddedDns({ address: n.gateway, port: this.#o.dnsPort ?? 53, tasksFor: (a) => this.#vipless.has(a.startsWith('::ffff:') ? a.slice(7) : a) });
        dns.setServices(this.#records(n.id));
        dns.setClientServices(this.#clientViews(n));
        await dns.start();
        n.dns = dns;
        this.#o.log?.(`network ${n.name}: DNS on ${n.gateway}:${dns.port}`);
      } else {
        n.dns.setServices(this.#records(n.id));
        n.dns.setClientServices(this.#clientViews(n));
      }
    } catch (e) {
      this.#warnOnce(`dns:${n.id}:${errorMessage(e)}`, `network ${n.name}: DNS: ${errorMessage(e)}`);
    }
  }

  /**
   * The host's firewall for a network's bridge. Where bridged packets pass iptables (br_netfilter,
   * which Docker loads, with FORWARD's policy DROP), traffic between the bridge's ports (tasks, the
   * VXLAN device) must be accepted, as Docker does for its own bridges; and tasks reach the outside
   * through the host (masquerade), unless the network is internal.
   */
  async #hostRules(n: NetState, add: boolean): Promise<void> {
    const internal = !!this.#table.networks.find((x) => x.id === n.id)?.internal;
    for (const [table, chain, ...rule] of hostFirewallRules(n.overlay.bridge, n.subnet, internal)) {
      const err = await this.#hostRule(table!, chain!, rule, add);
      if (err) this.#warnOnce(`fw:${n.id}:${table}`, `network ${n.name}: iptables ${table} ${chain}: ${err} (tasks may not reach each other where bridged traffic is filtered)`);
    }
  }

  /** One rule of the host's firewall put first in its chain (or deleted), unless already so; an error's text, or null. */
  async #hostRule(table: string, chain: string, rule: readonly string[], add: boolean): Promise<string | null> {
    const has = (await this.#run(['iptables', '-w', '-t', table, '-C', chain, ...rule]).catch(() => ({ code: 127, stdout: '', stderr: 'no iptables' }))).code === 0;
    if (has === add) return null;
    const r = await this.#run(['iptables', '-w', '-t', table, add ? '-I' : '-D', chain, ...(add ? ['1'] : []), ...rule]).catch((e) => ({ code: 127, stdout: '', stderr: errorMessage(e) }));
    return r.code === 0 ? null : r.stderr.trim() || 'failed';
  }

  /**
   * Whether this host's bridges can carry service VIPs (the host path), decided once. It needs bridged
   * traffic to pass iptables (br_netfilter, `net.bridge.bridge-nf-call-iptables=1`, as Docker sets
   * up): a backend on the bridge or behind the VXLAN device answers the client directly at L2, and
   * only conntrack on the bridge turns its address back into the VIP. Without it we neither load the
   * module nor flip the switch (it changes how every bridge of the host is filtered): VMs are told
   * task addresses instead, as before, and the log says why.
   */
  async #hostPath(): Promise<boolean> {
    if (this.#hostPathOk !== undefined) return this.#hostPathOk;
    const sysctl = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    const failed = (e: unknown) => ({ code: 127, stdout: '', stderr: errorMessage(e) });
    const r = await this.#run(['cat', sysctl]).catch(failed);
    const restore = await this.#run(['iptables-restore', '--version']).catch(failed);
    let why: string | null = null;
    if (r.code !== 0) why = `${sysctl} is missing (br_netfilter is not loaded; Docker loads it)`;
    else if (r.stdout.trim() !== '1') why = `${sysctl} is ${r.stdout.trim()}, not 1`;
    else if (restore.code !== 0) why = 'iptables-restore does not run';
    this.#hostPathOk = why === null;
    if (why) this.#o.log?.(`networks: VMs reach services at their tasks' addresses, not at VIPs: bridged traffic must pass iptables for the host to carry VIPs, and ${why}`);
    return this.#hostPathOk;
  }

  /**
   * The host path of a network (see hostVipRules): its chains rewritten when the table changed, their
   * jumps, the VIPs as /32 addresses on the bridge (so the host answers ARP for them: the VXLAN
   * device answers ARP from its own table and never sends it to other hosts), and hairpin on the
   * bridge's taps (VM NICs), so that a VM whose connection to a VIP is sent to itself gets it back.
   * A table update looks at the bridge only when its VIPs changed; the taps are looked at (`taps`)
   * when a task is prepared or a VM runs, the only times a tap comes.
   */
  async #applyHostVips(n: NetState, taps = false): Promise<void> {
    if (!(await this.#hostPath())) return;
    const bridge = n.overlay.bridge;
    try {
      const rules = hostVipRules(this.#table, n.id, bridge);
      if (rules !== n.hostRules) {
        // A directory of our own (0700, unpredictable name): a root daemon never writes to a fixed
        // path under /tmp, where another user could have put a link.
        const dir = mkdtempSync(join(tmpdir(), 'shoal-vip-'));
        try {
          const file = join(dir, 'rules');
          writeFileSync(file, rules, { mode: 0o600 });
          await must(this.#run, ['iptables-restore', '-w', '--noflush', file]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        n.hostRules = rules;
      }
      if (!n.hostJumps) {
        for (const [table, chain, ...rule] of hostVipJumps(bridge, n.subnet)) {
          const err = await this.#hostRule(table!, chain!, rule, true);
          if (err) throw new Error(`iptables ${table} ${chain}: ${err}`);
        }
        n.hostJumps = true;
      }
      const vips = hostVips(this.#table, n.id);
      if (vips.join(' ') !== n.hostAddrs) await this.#bridgeVips(n, vips);
      if (taps) {
        const ports = await jsonOf<{ ifname: string; linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } } }>(this.#run, ['ip', '-d', '-j', 'link', 'show', 'master', bridge]);
        for (const p of ports) {
          if (p.linkinfo?.info_kind === 'tun' && p.linkinfo.info_slave_data?.hairpin !== true) await must(this.#run, ['bridge', 'link', 'set', 'dev', p.ifname, 'hairpin', 'on']);
        }
      }
    } catch (e) {
      n.hostRules = undefined;
      n.hostAddrs = undefined;
      this.#warnOnce(`hostvip:${n.id}:${errorMessage(e)}`, `network ${n.name}: VIPs on the bridge: ${errorMessage(e)}`);
    }
  }

  /** The bridge holds exactly `vips` as /32 addresses (besides the gateway). */
  async #bridgeVips(n: NetState, vips: string[]): Promise<void> {
    const bridge = n.overlay.bridge;
    const want = new Set(vips);
    const [link] = await jsonOf<{ addr_info?: { family?: string; local?: string; prefixlen?: number }[]; }>(this.#run, ['ip', '-j', 'addr', 'show', 'dev', bridge]);
    const have = new Set<string>();
    for (const a of link?.addr_info ?? []) {
      if (a.family !== 'inet' || a.prefixlen !== 32 || !a.local || a.local === n.gateway) continue;
      if (want.has(a.local)) have.add(a.local);
      else await tolerate(this.#run, ['ip', 'addr', 'del', `${a.local}/32`, 'dev', bridge], /Cannot assign|not found/i);
    }
    for (const vip of want) if (!have.has(vip)) await must(this.#run, ['ip', 'addr', 'replace', `${vip}/32`, 'dev', bridge]);
    n.hostAddrs = vips.join(' ');
  }

  /** The host path of a network goes: its jumps, then its chains (the addresses go with the bridge). */
  async #removeHostVips(n: NetState): Promise<void> {
    const { dnat, masq, drop } = hostVipChains(n.overlay.bridge);
    for (const [table, chain, ...rule] of hostVipJumps(n.overlay.bridge, n.subnet)) {
      const err = await this.#hostRule(table!, chain!, rule, false);
      if (err) this.#o.log?.(`network ${n.name}: iptables ${table} ${chain}: ${err}`);
    }
    for (const [table, chain] of [['nat', dnat], ['nat', masq], ['filter', drop]] as const) {
      for (const op of ['-F', '-X']) {
        const r = await this.#run(['iptables', '-w', '-t', table, op, chain]).catch((e) => ({ code: 127, stdout: '', stderr: errorMessage(e) }));
        if (r.code !== 0 && !/No chain|does not exist|no iptables|ENOENT|not found|No such file/i.test(r.stderr)) this.#o.log?.(`network ${n.name}: iptables ${op} ${chain}: ${r.stderr.trim()}`);
      }
    }
  }

  async #removeNet(n: NetState): Promise<void> {
    n.dns?.stop();
    this.#nets.delete(n.id);
    this.#remember();
    await this.#hostRules(n, false);
    await this.#removeHostVips(n);
    await n.overlay.remove().catch((e) => this.#o.log?.(`network ${n.name}: remove: ${errorMessage(e)}`));
    this.#o.log?.(`network ${n.name}: removed from this host`);
  }

  /**
   * The VIP rules of one task's namespace: for each service with a VIP on one of its networks, DNAT
   * of the VIP (any port) to one of the service's running tasks on that network, spread evenly
   * (each rule takes 1/(remaining) of what reaches it, as kube-proxy's iptables mode does).
   */
  vipRules(nets: Iterable<string>): string {
    const lines = ['*nat', `:${CHAIN} - [0:0]`];
    const mine = new Set(nets);
    for (const s of this.#table.services) {
      if (s.mode !== 'vip') continue;
      for (const v of s.vips) {
        if (mine.has(v.net)) lines.push(...spreadRules(CHAIN, v.addr, s.tasks.filter((t) => t.net === v.net).map((t) => t.addr)));
      }
    }
    lines.push('COMMIT', '');
    return lines.join('\n');
  }

  async #applyRules(t: LocalTask): Promise<void> {
    if (!t.ns) return;
    const rules = this.vipRules(t.nets.keys());
    if (rules === t.rules && t.jump) return;
    const prefix = nsPrefix(t.ns);
    try {
      const r = await spawnIn([...prefix, 'iptables-restore', '-w', '--noflush'], rules);
      if (r.code !== 0) throw new Error(`iptables-restore: ${r.stderr.trim()}`);
      t.rules = rules;
      if (!t.jump) {
        const check = await spawnIn([...prefix, 'iptables', '-w', '-t', 'nat', '-C', 'OUTPUT', '-j', CHAIN]);
        if (check.code !== 0) {
          const add = await spawnIn([...prefix, 'iptables', '-w', '-t', 'nat', '-I', 'OUTPUT', '1', '-j', CHAIN]);
          if (add.code !== 0) throw new Error(`iptables: ${add.stderr.trim()}`);
        }
        t.jump = true;
      }
    } catch (e) {
      const msg = /ENOENT|not found|No such file/i.test(errorMessage(e)) ? 'iptables is not installed: service VIPs do not route (names in dnsrr mode still resolve)' : errorMessage(e);
      this.#warnOnce(`vip:${t.id}`, `task ${t.id}: VIP rules: ${msg}`);
    }
  }
}

async function spawnIn(argv: string[], stdin?: string): Promise<{ code: number; stderr: string }> {
  try {
    const p = Bun.spawn(argv, { stdin: stdin === undefined ? 'ignore' : new TextEncoder().encode(stdin), stdout: 'ignore', stderr: 'pipe', timeout: 10_000 });
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    return { code, stderr };
  } catch (e) {
    return { code: 127, stderr: errorMessage(e) };
  }
}

