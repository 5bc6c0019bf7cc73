/**
 * Containers on shoal overlay networks. The worker makes each network's Linux bridge (gateway
 * address, VXLAN uplink) before the controller exists; here a Docker network of the `bridge` driver
 * is bound to that bridge (`com.docker.network.bridge.name`), so the engine plugs the container's
 * veth into it at the task's fixed address and MAC.
 *
 * What Docker's bridge driver (20.10) does with a bridge that already exists (checked by hand, and
 * by overlay.test.ts): it keeps the bridge, its MTU and its address when that is the network's
 * gateway (a different address would be replaced by the gateway); it adds iptables rules for the
 * bridge — FORWARD accept in/out and bridge-to-bridge (so bridged VXLAN traffic passes even with
 * br_netfilter), the DOCKER-ISOLATION drops towards other Docker networks, and
 * `POSTROUTING -s <subnet> ! -o <bridge> -j MASQUERADE`, so containers reach outside through the
 * host (what we want). Removing the Docker network removes those rules but leaves the bridge, its
 * address and its up state alone (the driver deletes only bridges it created: had the bridge been
 * missing at create, Docker would have made it, and would delete it with the network).
 * Docker also sets the FORWARD policy to DROP and bridge-nf-call-iptables=1 host-wide, so a shoal
 * bridge with no Docker network on it (process tasks only) drops bridged traffic unless the worker
 * accepts it itself.
 *
 * DNS: the container's /etc/resolv.conf says `nameserver 127.0.0.11` / `options ndots:0` (Docker's
 * embedded resolver on a user-defined network); names Docker does not know go to `HostConfig.Dns`
 * (the gateway), sent from the container's own address on the overlay (overlay.test.ts checks it).
 *
 * Per-network calls are serialized in this process (`withNetworks`): a task being prepared cannot
 * see its network removed by another task's `remove()` between "ensure" and "create the container".
 *
 * Leftovers: a Docker network outlives a daemon killed (or stopped while removing it failed) with
 * the network still there. Each shoal network carries its node's ID (`io.shoal.node.id`), so the
 * daemon, at start, removes the empty ones it owns (`sweepOwnNetworks`); and one left by another
 * run (a wiped data dir, a cluster this host left) that holds the subnet a network needs now, which
 * Docker would refuse with "Pool overlaps", is removed when empty (`removeClashing`).
 */
import type Docker from 'dockerode';
import type { ContainerCreateOptions, NetworkInspectInfo } from 'dockerode';
import type { TaskNetwork, TaskNetworkAttachment } from '../../src/executor/contract.ts';
import { pollUntil } from '../../src/executor/logs.ts';
import { type Cidr, overlaps, parseCidr } from '../../src/lib/cidr.ts';
import { engineMessage, isNotFound, statusOf } from './engine.ts';

/** Marks a Docker network as made by shoal for an overlay network (the value is its ID). */
export const LABEL_NETWORK = 'io.shoal.network.id';
export const LABEL_NETWORK_NAME = 'io.shoal.network.name';
/** The node that made a container or a Docker network (the latter: which node may sweep it). */
export const LABEL_NODE = 'io.shoal.node.id';
export const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
export const MTU_OPTION = 'com.docker.network.driver.mtu';

/** `shoal-<name>-<first 12 of the ID>`: readable in `docker network ls`, unique per overlay network. */
export function dockerNetworkName(a: Pick<TaskNetworkAttachment, 'networkId' | 'name'>): string {
  const name = a.name.replace(/[^a-zA-Z0-9_.-]/g, '_').slice(0, 63);
  const id = a.networkId.replace(/[^a-zA-Z0-9]/g, '').slice(0, 12);
  return `shoal-${name}-${id}`;
}

/** The address without its prefix length: "10.0.1.5/24" → "10.0.1.5". */
export const bareAddress = (cidr: string) => cidr.split('/')[0]!;

/** `owner`: the node ID of the daemon making it (`io.shoal.node.id`), which alone may sweep it. */
export function networkCreateOptions(a: TaskNetworkAttachment, owner?: string): Docker.NetworkCreateOptions {
  return {
    Name: dockerNetworkName(a),
    // Docker < 25 allows two networks of one name unless asked; the second create then gets a 409.
    CheckDuplicate: true,
    Driver: 'bridge',
    IPAM: { Driver: 'default', Config: [{ Subnet: a.subnet, Gateway: a.gateway }] },
    Options: { [BRIDGE_NAME_OPTION]: a.bridge, [MTU_OPTION]: String(a.mtu) },
    Labels: { [LABEL_NETWORK]: a.networkId, [LABEL_NETWORK_NAME]: a.name, ...(owner ? { [LABEL_NODE]: owner } : {}) },
  };
}

/**
 * The create-container fields for a task's networks: the first network is the container's own
 * (NetworkMode), with the fixed address and MAC; the others are connected before start (Docker
 * before API 1.44 takes a single network at create). Dns: Docker's embedded resolver in the
 * container (127.0.0.11) forwards the names it does not know to these servers.
 */
export function networkCreateFields(n: TaskNetwork): Pick<ContainerCreateOptions, 'MacAddress' | 'NetworkingConfig'> & { HostConfig: { NetworkMode: string; Dns: string[] } } {
  const first = n.attachments[0]!;
  const name = dockerNetworkName(first);
  return {
    // Container-wide MAC: the only way before API 1.44, applied to the NetworkMode network's endpoint.
    MacAddress: first.mac,
    NetworkingConfig: { EndpointsConfig: { [name]: endpointConfig(first) } },
    HostConfig: { NetworkMode: name, Dns: [...n.dns] },
  };
}

/**
 * An endpoint at the attachment's address. `MacAddress` is honoured from API 1.44 on (older engines
 * ignore it and derive 02:42 + the address, which is what shoal's MACs are anyway).
 */
export function endpointConfig(a: TaskNetworkAttachment): Docker.EndpointSettings {
  return { IPAMConfig: { IPv4Address: bareAddress(a.address) }, MacAddress: a.mac } as Docker.EndpointSettings;
}

/** Why an existing Docker network of that name does not fit the attachment; undefined when it does. */
export function mismatch(info: NetworkInspectInfo, a: TaskNetworkAttachment): string | undefined {
  const cfg = info.IPAM?.Config?.[0];
  if (info.Driver !== 'bridge') return `driver ${info.Driver}, not bridge`;
  if (cfg?.Subnet !== a.subnet) return `subnet ${cfg?.Subnet ?? '(none)'}, not ${a.subnet}`;
  if (cfg?.Gateway && cfg.Gateway !== a.gateway) return `gateway ${cfg.Gateway}, not ${a.gateway}`;
  if (info.Options?.[BRIDGE_NAME_OPTION] !== a.bridge) return `bridge ${info.Options?.[BRIDGE_NAME_OPTION] ?? '(none)'}, not ${a.bridge}`;
  return undefined;
}

const locks = new Map<string, Promise<void>>();

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(name) ?? Promise.resolve();
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const tail = prev.then(() => gate);
  locks.set(name, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (locks.get(name) === tail) locks.delete(name);
  }
}

/** Run `fn` holding this process's lock of each Docker network (taken in name order: no deadlock). */
export function withNetworks<T>(names: string[], fn: () => Promise<T>): Promise<T> {
  return [...new Set(names)].sort().reduceRight<() => Promise<T>>((inner, name) => () => withLock(name, inner), fn)();
}

async function inspectNetwork(docker: Docker, name: string, signal?: AbortSignal): Promise<NetworkInspectInfo | undefined> {
  try {
    return await (docker.getNetwork(name) as unknown as { inspect(o: object): Promise<NetworkInspectInfo> }).inspect(signal ? { abortSignal: signal } : {});
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * The Docker network bound to the attachment's bridge, made when missing. A network of that name
 * set up differently (a stale one: another subnet…) is replaced when no container uses it, else it
 * is an error. A create that loses a race (409, "already exists", the bridge taken) reuses the
 * winner's network. Call under `withNetworks`.
 */
export async function ensureNetwork(docker: Docker, a: TaskNetworkAttachment, log: (m: string) => void, signal?: AbortSignal, owner?: string): Promise<void> {
  const opts = networkCreateOptions(a, owner);
  const name = opts.Name;
  for (let attempt = 0; ; attempt++) {
    const have = await inspectNetwork(docker, name, signal);
    if (have) {
      const why = mismatch(have, a);
      if (!why) return;
      if (Object.keys(have.Containers ?? {}).length > 0 || attempt > 0) {
        throw new Error(`Docker network ${name} exists with ${why} and is in use; remove it (docker network rm ${name}) once its containers are gone`);
      }
      log(`Docker network ${name} has ${why}: replacing it`);
      try { await docker.getNetwork(have.Id).remove(); } catch (err) {
        if (!isNotFound(err)) throw new Error(`cannot replace Docker network ${name} (${why}): ${engineMessage(err)}`, { cause: err });
      }
    }
    if (attempt === 0) await removeClashing(docker, a, name, log, signal);
    try {
      await docker.createNetwork({ ...opts, ...(signal ? { abortSignal: signal } : {}) });
      log(`created Docker network ${name} on bridge ${a.bridge}`);
      return;
    } catch (err) {
      signal?.throwIfAborted();
      // Lost a race with another creator (20.10 says 409 "already exists", or "Pool overlaps" when
      // the winner holds the subnet but is not listed yet): look again, and take theirs when it fits.
      const lost = statusOf(err) === 409 || /already exists|Pool overlaps|same bridge name|conflicts with network/i.test(engineMessage(err));
      if (lost && attempt < 2 && await pollUntil(() => inspectNetwork(docker, name, signal), { intervalMs: 50, timeoutMs: 3_000, ...(signal ? { signal } : {}) })) continue;
      throw new Error(`cannot create Docker network ${name} on bridge ${a.bridge}: ${engineMessage(err)}`, { cause: err });
    }
  }
}

/**
 * Remove a shoal-made Docker network when no container is on it any more (the bridge stays: the
 * worker owns it). "Has active endpoints" and "not found" mean there is nothing to do. Call under
 * `withNetworks`.
 */
export async function releaseNetwork(docker: Docker, name: string, log: (m: string) => void): Promise<void> {
  try {
    const info = await inspectNetwork(docker, name);
    if (!info || !info.Labels?.[LABEL_NETWORK] || Object.keys(info.Containers ?? {}).length > 0) return;
    await docker.getNetwork(info.Id).remove();
    log(`removed Docker network ${name}`);
  } catch (err) {
    if (isNotFound(err) || /active endpoints/i.test(engineMessage(err))) return;
    log(`cannot remove Docker network ${name}: ${engineMessage(err)}`);
  }
}

/** `Config[0].Subnet` of a listed network, parsed; undefined when it has none (or not IPv4). */
function subnetOf(n: NetworkInspectInfo): Cidr | undefined {
  const c = n.IPAM?.Config?.[0]?.Subnet;
  const parsed = c ? parseCidr(c) : undefined;
  return typeof parsed === 'object' ? parsed : undefined;
}

/**
 * Before creating `name`: another shoal-made Docker network holding an overlapping subnet is a
 * leftover (two shoal networks on one host cannot share addresses: their bridges would claim the
 * same route). Empty, it goes; with containers on it, the error names it and what to do. A network
 * of the subnet not made by shoal is the user's: named, never touched.
 */
async function removeClashing(docker: Docker, a: TaskNetworkAttachment, name: string, log: (m: string) => void, signal?: AbortSignal): Promise<void> {
  const want = parseCidr(a.subnet);
  if (typeof want === 'string') return;
  const all = await docker.listNetworks({ ...(signal ? { abortSignal: signal } : {}) } as never) as unknown as NetworkInspectInfo[];
  for (const n of all) {
    const sub = subnetOf(n);
    if (n.Name === name || !sub || !overlaps(sub, want)) continue;
    if (!n.Labels?.[LABEL_NETWORK]) {
      throw new Error(`subnet ${a.subnet} overlaps Docker network ${n.Name} (${n.IPAM?.Config?.[0]?.Subnet}), which shoal did not make; remove it (docker network rm ${n.Name}) or give the shoal network another subnet`);
    }
    const info = await inspectNetwork(docker, n.Id, signal);
    if (!info) continue;
    const users = Object.values(info.Containers ?? {}).map((c) => c.Name);
    if (users.length) {
      throw new Error(`subnet ${a.subnet} is held by Docker network ${n.Name} (left by another shoal run), which containers ${users.join(', ')} still use; remove them (docker rm -f …) and the network goes with the next try`);
    }
    try {
      await docker.getNetwork(n.Id).remove();
      log(`removed Docker network ${n.Name} (subnet ${n.IPAM?.Config?.[0]?.Subnet}, node ${n.Labels[LABEL_NODE] ?? 'unknown'}): a leftover holding the subnet of ${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw new Error(`cannot remove Docker network ${n.Name}, a leftover holding subnet ${a.subnet}: ${engineMessage(err)}`, { cause: err });
    }
  }
}

/**
 * At start: the Docker networks this node made (`io.shoal.node.id` = `owner`) that no container
 * uses are leftovers of its last run (killed before it removed them, or removing them failed):
 * they go. A network still used by a container that survived the restart stays; its task is
 * re-attached and releases it as usual. Networks are made again when a task needs them. Returns
 * the names removed; never throws (logs).
 */
export async function sweepOwnNetworks(docker: Docker, owner: string, log: (m: string) => void): Promise<string[]> {
  const removed: string[] = [];
  try {
    const mine = await docker.listNetworks({ filters: { label: [`${LABEL_NODE}=${owner}`] } }) as NetworkInspectInfo[];
    for (const n of mine) {
      if (!n.Labels?.[LABEL_NETWORK]) continue;
      await withNetworks([n.Name], async () => {
        const info = await inspectNetwork(docker, n.Id);
        if (!info || Object.keys(info.Containers ?? {}).length > 0) return;
        try {
          await docker.getNetwork(n.Id).remove();
          removed.push(n.Name);
        } catch (err) {
          if (!isNotFound(err) && !/active endpoints/i.test(engineMessage(err))) log(`cannot remove Docker network ${n.Name} left by this node's last run: ${engineMessage(err)}`);
        }
      });
    }
    if (removed.length) log(`removed Docker networks left by this node's last run: ${removed.join(', ')}`);
  } catch (err) {
    log(`looking for Docker networks left by this node's last run: ${engineMessage(err)}`);
  }
  return removed;
}
