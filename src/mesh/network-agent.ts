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
 *
 * This file is the agent's bookkeeping and ordering; the parts it drives each have a file: the rules'
 * text (vip-rules.ts), the host path and bridge firewall (host-path.ts), a task namespace's rules
 * (task-vip.ts), the DNS names (dns-views.ts), and the state it keeps (network-state.ts).
 */
import { existsSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { errorMessage } from '../lib/errors.ts';
import type { TaskNetwork, TaskNetworkAttachment } from '../executor/contract.ts';
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import { type Task, VXLAN_OPTION } from '../types/index.ts';
import { EmbeddedDns } from './dns.ts';
import { clientViews, serviceRecords } from './dns-views.ts';
import { HostPath } from './host-path.ts';
import { hostRunner, type NetnsRef, type Runner, tolerate } from './netlink-cmd.ts';
import { type LocalTask, type NetState, readRemembered, type RememberedNet, writeRemembered } from './network-state.ts';
import { type ForwardingEntry, macFor, OVERLAY_MTU, OverlayNetwork } from './overlay.ts';
import { applyTaskVipRules } from './task-vip.ts';
import { taskVipRules } from './vip-rules.ts';

// The rule builders live in vip-rules.ts; test/netns still names this one here.
export { hostVipChains } from './vip-rules.ts';

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

const NS_GONE = /No such file|does not exist|Cannot (open|find)|Invalid argument/i;

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
  /** The host's side of each bridge: its firewall and the VIP path for clients without VIP rules. */
  readonly #hostPath: HostPath;

  constructor(opts: NetworkAgentOptions) {
    this.#o = opts;
    this.#run = opts.run ?? hostRunner();
    this.#runIn = opts.runIn ?? hostRunner;
    this.#hostPath = new HostPath(this.#run, (m) => this.#o.log?.(m), (key, msg) => this.#warnOnce(key, msg));
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
      if (!this.#tableSeen) for (const old of readRemembered(this.#o.stateFile)) if (!this.#nets.has(old.id)) this.#dormant.set(old.id, old);
      this.#tableSeen = true;
      await this.#removeGone([...this.#nets.keys(), ...this.#dormant.keys()]);
      for (const n of this.#nets.values()) await this.#refreshDns(n);
      for (const n of this.#nets.values()) await this.#hostPath.apply(n, this.#table);
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
        if (await this.#hostPath.available()) {
          for (const net of t.nets.keys()) {
            const n = this.#nets.get(net);
            if (n) await this.#hostPath.apply(n, this.#table, true);
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

  /** A task on several networks resolves the names of all of them (see clientViews). */
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

  #remember(): void {
    if (!this.#o.stateFile) return;
    const list: RememberedNet[] = [
      ...[...this.#nets.values()].map((n) => ({ id: n.id, name: n.name, subnet: n.subnet, gateway: n.gateway, vni: n.vni, local: n.overlay.spec.local })),
      ...this.#dormant.values(),
    ];
    try {
      writeRemembered(this.#o.stateFile, list);
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
    await this.#hostPath.firewall(n, this.#internal(n), true);
    await this.#forward(n);
    await this.#refreshDns(n);
    // Checked again at every prepare: the bridge may have been made anew (its addresses gone), and
    // the task may bring a tap.
    n.hostJumps = false;
    n.hostRules = undefined;
    n.hostAddrs = undefined;
    await this.#hostPath.apply(n, this.#table, true);
    return n;
  }

  async #forward(n: NetState): Promise<void> {
    const entries = this.#o.remote(n.id);
    await n.overlay.setForwarding(entries).catch((e) => this.#o.log?.(`network ${n.name}: forwarding: ${errorMessage(e)}`));
  }

  async #refreshDns(n: NetState): Promise<void> {
    try {
      if (!n.dns) {
        const dns = new EmbeddedDns({ address: n.gateway, port: this.#o.dnsPort ?? 53, tasksFor: (a) => this.#vipless.has(a.startsWith('::ffff:') ? a.slice(7) : a) });
        dns.setServices(serviceRecords(this.#table, n.id));
        dns.setClientServices(clientViews(this.#table, this.#tasks.values(), n.id));
        await dns.start();
        n.dns = dns;
        this.#o.log?.(`network ${n.name}: DNS on ${n.gateway}:${dns.port}`);
      } else {
        n.dns.setServices(serviceRecords(this.#table, n.id));
        n.dns.setClientServices(clientViews(this.#table, this.#tasks.values(), n.id));
      }
    } catch (e) {
      this.#warnOnce(`dns:${n.id}:${errorMessage(e)}`, `network ${n.name}: DNS: ${errorMessage(e)}`);
    }
  }

  #internal(n: NetState): boolean {
    return !!this.#table.networks.find((x) => x.id === n.id)?.internal;
  }

  async #removeNet(n: NetState): Promise<void> {
    n.dns?.stop();
    this.#nets.delete(n.id);
    this.#remember();
    await this.#hostPath.firewall(n, this.#internal(n), false);
    await this.#hostPath.remove(n);
    await n.overlay.remove().catch((e) => this.#o.log?.(`network ${n.name}: remove: ${errorMessage(e)}`));
    this.#o.log?.(`network ${n.name}: removed from this host`);
  }

  /** The VIP rules of one task's namespace (see taskVipRules). */
  vipRules(nets: Iterable<string>): string {
    return taskVipRules(this.#table, nets);
  }

  #applyRules(t: LocalTask): Promise<void> {
    return applyTaskVipRules(t, this.vipRules(t.nets.keys()), (key, msg) => this.#warnOnce(key, msg));
  }
}
