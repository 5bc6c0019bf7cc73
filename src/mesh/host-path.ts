/**
 * The host's side of a network's bridge: its firewall (forwarding and masquerade) and the host path
 * of service VIPs, for the clients that have no VIP rules of their own (a VM, whose QEMU shares the
 * host's namespace; a container before its rules are written): the VIPs as /32 addresses on the
 * bridge (the host answers ARP for them) and DNAT in the host's PREROUTING from the bridge, where
 * bridged traffic passes iptables (br_netfilter), so that replies that come back at L2 are
 * translated back. The rules' text comes from vip-rules.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.ts';
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import { jsonOf, must, type Runner, tolerate } from './netlink-cmd.ts';
import type { NetState } from './network-state.ts';
import { hostFirewallRules, hostVipChains, hostVipJumps, hostVipRules, hostVips } from './vip-rules.ts';

export class HostPath {
  /** Whether this host's bridges can carry VIPs (see available()), once known. */
  #ok: boolean | undefined;

  constructor(
    private readonly run: Runner,
    private readonly log: (msg: string) => void,
    /** Log a message once per key (a failure that repeats at every table update is said once). */
    private readonly warnOnce: (key: string, msg: string) => void,
  ) {}

  /**
   * The host's firewall for a network's bridge. Where bridged packets pass iptables (br_netfilter,
   * which Docker loads, with FORWARD's policy DROP), traffic between the bridge's ports (tasks, the
   * VXLAN device) must be accepted, as Docker does for its own bridges; and tasks reach the outside
   * through the host (masquerade), unless the network is internal.
   */
  async firewall(n: NetState, internal: boolean, add: boolean): Promise<void> {
    for (const [table, chain, ...rule] of hostFirewallRules(n.overlay.bridge, n.subnet, internal)) {
      const err = await this.#rule(table!, chain!, rule, add);
      if (err) this.warnOnce(`fw:${n.id}:${table}`, `network ${n.name}: iptables ${table} ${chain}: ${err} (tasks may not reach each other where bridged traffic is filtered)`);
    }
  }

  /** One rule of the host's firewall put first in its chain (or deleted), unless already so; an error's text, or null. */
  async #rule(table: string, chain: string, rule: readonly string[], add: boolean): Promise<string | null> {
    const has = (await this.run(['iptables', '-w', '-t', table, '-C', chain, ...rule]).catch(() => ({ code: 127, stdout: '', stderr: 'no iptables' }))).code === 0;
    if (has === add) return null;
    const r = await this.run(['iptables', '-w', '-t', table, add ? '-I' : '-D', chain, ...(add ? ['1'] : []), ...rule]).catch((e) => ({ code: 127, stdout: '', stderr: errorMessage(e) }));
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
  async available(): Promise<boolean> {
    if (this.#ok !== undefined) return this.#ok;
    const sysctl = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    const failed = (e: unknown) => ({ code: 127, stdout: '', stderr: errorMessage(e) });
    const r = await this.run(['cat', sysctl]).catch(failed);
    const restore = await this.run(['iptables-restore', '--version']).catch(failed);
    let why: string | null = null;
    if (r.code !== 0) why = `${sysctl} is missing (br_netfilter is not loaded; Docker loads it)`;
    else if (r.stdout.trim() !== '1') why = `${sysctl} is ${r.stdout.trim()}, not 1`;
    else if (restore.code !== 0) why = 'iptables-restore does not run';
    this.#ok = why === null;
    if (why) this.log(`networks: VMs reach services at their tasks' addresses, not at VIPs: bridged traffic must pass iptables for the host to carry VIPs, and ${why}`);
    return this.#ok;
  }

  /**
   * The host path of a network (see hostVipRules): its chains rewritten when the table changed, their
   * jumps, the VIPs as /32 addresses on the bridge (so the host answers ARP for them: the VXLAN
   * device answers ARP from its own table and never sends it to other hosts), and hairpin on the
   * bridge's taps (VM NICs), so that a VM whose connection to a VIP is sent to itself gets it back.
   * A table update looks at the bridge only when its VIPs changed; the taps are looked at (`taps`)
   * when a task is prepared or a VM runs, the only times a tap comes.
   */
  async apply(n: NetState, table: NetTable, taps = false): Promise<void> {
    if (!(await this.available())) return;
    const bridge = n.overlay.bridge;
    try {
      const rules = hostVipRules(table, n.id, bridge);
      if (rules !== n.hostRules) {
        // A directory of our own (0700, unpredictable name): a root daemon never writes to a fixed
        // path under /tmp, where another user could have put a link.
        const dir = mkdtempSync(join(tmpdir(), 'shoal-vip-'));
        try {
          const file = join(dir, 'rules');
          writeFileSync(file, rules, { mode: 0o600 });
          await must(this.run, ['iptables-restore', '-w', '--noflush', file]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        n.hostRules = rules;
      }
      if (!n.hostJumps) {
        for (const [t, chain, ...rule] of hostVipJumps(bridge, n.subnet)) {
          const err = await this.#rule(t!, chain!, rule, true);
          if (err) throw new Error(`iptables ${t} ${chain}: ${err}`);
        }
        n.hostJumps = true;
      }
      const vips = hostVips(table, n.id);
      if (vips.join(' ') !== n.hostAddrs) await this.#bridgeVips(n, vips);
      if (taps) {
        const ports = await jsonOf<{ ifname: string; linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } } }>(this.run, ['ip', '-d', '-j', 'link', 'show', 'master', bridge]);
        for (const p of ports) {
          if (p.linkinfo?.info_kind === 'tun' && p.linkinfo.info_slave_data?.hairpin !== true) await must(this.run, ['bridge', 'link', 'set', 'dev', p.ifname, 'hairpin', 'on']);
        }
      }
    } catch (e) {
      n.hostRules = undefined;
      n.hostAddrs = undefined;
      this.warnOnce(`hostvip:${n.id}:${errorMessage(e)}`, `network ${n.name}: VIPs on the bridge: ${errorMessage(e)}`);
    }
  }

  /** The bridge holds exactly `vips` as /32 addresses (besides the gateway). */
  async #bridgeVips(n: NetState, vips: string[]): Promise<void> {
    const bridge = n.overlay.bridge;
    const want = new Set(vips);
    const [link] = await jsonOf<{ addr_info?: { family?: string; local?: string; prefixlen?: number }[]; }>(this.run, ['ip', '-j', 'addr', 'show', 'dev', bridge]);
    const have = new Set<string>();
    for (const a of link?.addr_info ?? []) {
      if (a.family !== 'inet' || a.prefixlen !== 32 || !a.local || a.local === n.gateway) continue;
      if (want.has(a.local)) have.add(a.local);
      else await tolerate(this.run, ['ip', 'addr', 'del', `${a.local}/32`, 'dev', bridge], /Cannot assign|not found/i);
    }
    for (const vip of want) if (!have.has(vip)) await must(this.run, ['ip', 'addr', 'replace', `${vip}/32`, 'dev', bridge]);
    n.hostAddrs = vips.join(' ');
  }

  /** The host path of a network goes: its jumps, then its chains (the addresses go with the bridge). */
  async remove(n: NetState): Promise<void> {
    const { dnat, masq, drop } = hostVipChains(n.overlay.bridge);
    for (const [table, chain, ...rule] of hostVipJumps(n.overlay.bridge, n.subnet)) {
      const err = await this.#rule(table!, chain!, rule, false);
      if (err) this.log(`network ${n.name}: iptables ${table} ${chain}: ${err}`);
    }
    for (const [table, chain] of [['nat', dnat], ['nat', masq], ['filter', drop]] as const) {
      for (const op of ['-F', '-X']) {
        const r = await this.run(['iptables', '-w', '-t', table, op, chain]).catch((e) => ({ code: 127, stdout: '', stderr: errorMessage(e) }));
        if (r.code !== 0 && !/No chain|does not exist|no iptables|ENOENT|not found|No such file/i.test(r.stderr)) this.log(`network ${n.name}: iptables ${op} ${chain}: ${r.stderr.trim()}`);
      }
    }
  }
}
