/**
 * The iptables rules of service VIPs and of a network's bridge, as text and argument lists: pure
 * functions of the dispatcher's table, so they are tested without a kernel. NetworkAgent (through
 * HostPath and the task namespaces) writes them.
 */
import type { NetTable } from '../manager/dispatcher/protocol.ts';

/** The chain of a task namespace's VIP rules (jumped to from its nat OUTPUT). */
export const TASK_VIP_CHAIN = 'SHOAL-VIP';

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

/**
 * The VIP rules of one task's namespace: for each service with a VIP on one of its networks, DNAT
 * of the VIP (any port) to one of the service's running tasks on that network, spread evenly
 * (each rule takes 1/(remaining) of what reaches it, as kube-proxy's iptables mode does).
 */
export function taskVipRules(table: NetTable, nets: Iterable<string>): string {
  const lines = ['*nat', `:${TASK_VIP_CHAIN} - [0:0]`];
  const mine = new Set(nets);
  for (const s of table.services) {
    if (s.mode !== 'vip') continue;
    for (const v of s.vips) {
      if (mine.has(v.net)) lines.push(...spreadRules(TASK_VIP_CHAIN, v.addr, s.tasks.filter((t) => t.net === v.net).map((t) => t.addr)));
    }
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}
