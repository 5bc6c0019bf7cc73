/**
 * The network table every host of an overlay network needs from the store: the networks (subnet,
 * gateway, VXLAN id) and, per service, its virtual IPs and its running tasks' addresses on each
 * network. Each host's embedded DNS answers from it, and the VIP rules in its tasks' namespaces
 * route by it. Read from the store only; the dispatcher sends it whole to every worker when it
 * changes (as the endpoint table). Where each task's address lives (which host) is not here: hosts
 * announce that themselves over gossip.
 */
import type { MemoryStore } from '../../store/index.ts';
import type { Task } from '../../types/index.ts';
import { MAX_NET_ADDRS, MAX_NET_NETWORKS, MAX_NET_SERVICES, type NetTable, type NetTableService } from './protocol.ts';

const bare = (cidr: string) => cidr.split('/')[0]!;

/** A task whose addresses are in use and answer: running, and meant to. */
export function isNetBackend(t: Task): boolean {
  return t.Status.State === 'running' && t.DesiredState === 'running' && !!t.NetworksAttachments?.length;
}

/** Does this change of a task possibly change the table? */
export function taskMattersForNet(t: Task, old?: Task): boolean {
  if (!old) return isNetBackend(t);
  return isNetBackend(t) !== isNetBackend(old);
}

/** The table, in a stable order (networks and services by name, addresses as allocated). */
export function netTable(store: MemoryStore): NetTable {
  const networks: NetTable['networks'] = [];
  for (const n of [...store.list('networks')].sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))) {
    const cfg = n.IPAM?.Config[0];
    if (!cfg?.Subnet || !cfg.Gateway || !Number.isInteger(n.VNI)) continue; // not allocated yet
    if (networks.length >= MAX_NET_NETWORKS) break;
    networks.push({ id: n.ID, name: n.Spec.Name, subnet: cfg.Subnet, gateway: bare(cfg.Gateway), vni: n.VNI!, ...(n.Spec.Internal ? { internal: true } : {}) });
  }
  const services: NetTableService[] = [];
  let addrs = 0;
  for (const s of [...store.list('services')].sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))) {
    const vips = (s.Endpoint?.VirtualIPs ?? []).map((v) => ({ net: v.NetworkID, addr: bare(v.Addr) }));
    const tasks: NetTableService['tasks'] = [];
    for (const t of store.by('tasks', 'service', s.ID)) {
      if (!isNetBackend(t)) continue;
      for (const a of t.NetworksAttachments!) if (a.Addresses[0]) tasks.push({ net: a.Network.ID, addr: bare(a.Addresses[0]) });
    }
    if (vips.length === 0 && tasks.length === 0) continue;
    if (services.length >= MAX_NET_SERVICES || addrs + tasks.length > MAX_NET_ADDRS) break;
    addrs += tasks.length;
    tasks.sort((a, b) => (a.net === b.net ? a.addr.localeCompare(b.addr) : a.net.localeCompare(b.net)));
    services.push({ id: s.ID, name: s.Spec.Name, mode: s.Spec.EndpointSpec?.Mode ?? 'vip', vips, tasks });
  }
  const hosts: NonNullable<NetTable['hosts']> = [];
  for (const n of store.list('nodes')) {
    const peer = n.Description.TLSInfo?.PeerID;
    if (peer) hosts.push({ node: n.ID, peer });
  }
  hosts.sort((a, b) => a.node.localeCompare(b.node));
  return { networks, services, hosts };
}
