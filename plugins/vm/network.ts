/**
 * A VM on overlay networks (`TaskContext.network`): per attachment a tap device on the network's
 * bridge, which QEMU opens as the guest's virtio-net interface with the attachment's MAC and MTU,
 * and the guest's address on its kernel command line (`ip=`, the kernel's nfsroot format; see
 * README.md for what a guest image must do with it).
 *
 * The executor makes the taps itself (persistent, before QEMU starts), so they are on the bridge
 * before the guest sends anything and outlive QEMU until `remove`. Their names derive from the task
 * ID alone, so a controller made after a daemon restart finds them again with nothing in memory.
 */
import { createHash } from 'node:crypto';
import type { TaskNetwork, TaskNetworkAttachment } from '../../src/executor/contract.ts';
import { hostRunner, jsonOf, must, type Runner, tolerate } from '../../src/mesh/netlink-cmd.ts';

/** IFNAMSIZ less the terminating NUL. */
const MAX_IFNAME = 15;
const GONE = /Cannot find device|does not exist|No such device/i;

/** The prefix of every tap of a task: `sht` and 8 hex digits of the task ID's hash. */
export function tapPrefix(taskId: string): string {
  return `sht${createHash('sha256').update(taskId).digest('hex').slice(0, 8)}`;
}

/** The tap of a task's attachment `index` (at most 15 bytes: up to 10 000 attachments). */
export function tapName(taskId: string, index: number): string {
  const name = `${tapPrefix(taskId)}${index}`;
  if (!Number.isInteger(index) || index < 0 || name.length > MAX_IFNAME) throw new RangeError(`vm: no tap name for attachment ${index}`);
  return name;
}

/** `255.255.255.0` for `/24`. */
export function netmaskOf(prefix: number): string {
  const m = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(prefix, 32))) >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.');
}

function splitAddress(a: TaskNetworkAttachment): { ip: string; prefix: number } {
  const [ip, len] = a.address.split('/');
  const prefix = len === undefined ? Number(a.subnet.split('/')[1]) : Number(len);
  if (!ip || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError(`vm: attachment address "${a.address}" is not ADDRESS/PREFIX`);
  return { ip, prefix };
}

/** The task's address on its first overlay network (no prefix length), or undefined without one. */
export function firstAddress(network: TaskNetwork | undefined): string | undefined {
  const a = network?.attachments[0];
  return a ? splitAddress(a).ip : undefined;
}

/**
 * What the guest is told on its kernel command line (README.md, "Networks"):
 * - `ip=<addr>::<gateway>:<netmask>:<hostname>:eth0:off:<dns0>:<dns1>` for the first attachment:
 *   the kernel's own format, applied by kernels with CONFIG_IP_PNP, else by the guest's init;
 * - `shoal.net<i>=<addr>/<prefix>,<mac>,<gateway>,<mtu>` for every attachment (the first too), so
 *   a guest can configure all of them, matching interfaces by MAC;
 * - `shoal.dns=<a>[,<b>…]`: every resolver.
 */
export function networkCmdline(network: TaskNetwork, hostname: string): string {
  const parts: string[] = [];
  const [first] = network.attachments;
  if (first) {
    const { ip, prefix } = splitAddress(first);
    const dns = network.dns.slice(0, 2);
    parts.push(`ip=${[ip, '', first.gateway, netmaskOf(prefix), hostname, 'eth0', 'off', ...dns].join(':')}`);
  }
  network.attachments.forEach((a, i) => {
    const { ip, prefix } = splitAddress(a);
    parts.push(`shoal.net${i}=${ip}/${prefix},${a.mac.toLowerCase()},${a.gateway},${a.mtu}`);
  });
  if (network.dns.length) parts.push(`shoal.dns=${network.dns.join(',')}`);
  return parts.join(' ');
}

/** One guest NIC as QEMU gets it. */
export interface GuestNic { tap: string; mac: string; mtu: number }

export function guestNics(taskId: string, network: TaskNetwork | undefined): GuestNic[] {
  return (network?.attachments ?? []).map((a, i) => ({ tap: tapName(taskId, i), mac: a.mac.toLowerCase(), mtu: a.mtu }));
}

interface LinkJson { ifname: string; master?: string; mtu?: number; operstate?: string; flags?: string[]; linkinfo?: { info_kind?: string } }

/**
 * Each attachment's tap, in the wanted state whatever state it is in: a persistent tap (QEMU opens
 * it, `script=no`), the attachment's MTU, on its bridge, up. A device of that name that is not a
 * tap is replaced.
 */
export async function ensureTaps(taskId: string, network: TaskNetwork, run: Runner = hostRunner()): Promise<string[]> {
  const names: string[] = [];
  for (const [i, a] of network.attachments.entries()) {
    const tap = tapName(taskId, i);
    const link = (await jsonOf<LinkJson>(run, ['ip', '-d', '-j', 'link', 'show', 'dev', tap]))[0];
    if (link && link.linkinfo?.info_kind !== 'tun') await tolerate(run, ['ip', 'link', 'del', tap], GONE);
    if (!link || link.linkinfo?.info_kind !== 'tun') await must(run, ['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await must(run, ['ip', 'link', 'set', 'dev', tap, 'mtu', String(a.mtu)]);
    await must(run, ['ip', 'link', 'set', 'dev', tap, 'master', a.bridge]);
    await must(run, ['ip', 'link', 'set', 'dev', tap, 'up']);
    names.push(tap);
  }
  return names;
}

/**
 * Delete every tap of the task, whatever attachments it was given (found by name prefix, so
 * nothing needs remembering). Nothing to do when they are gone already.
 */
export async function removeTaps(taskId: string, run: Runner = hostRunner()): Promise<string[]> {
  const prefix = tapPrefix(taskId);
  const links = await jsonOf<LinkJson>(run, ['ip', '-j', 'link', 'show']);
  const mine = links.map((l) => l.ifname).filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)));
  for (const tap of mine) await tolerate(run, ['ip', 'link', 'del', tap], GONE);
  return mine;
}
