/**
 * The network table every host of an overlay network needs from the store: the networks (subnet,
 * gateway, VXLAN id) and, per service, its virtual IPs and its running tasks' addresses on each
 * network. Each host's embedded DNS answers from it, and the VIP rules in its tasks' namespaces
 * route by it. Read from the store only; the dispatcher sends it whole when a session registers
 * and then, at most once per flush interval, only the changed rows (net-delta.ts). Where each
 * task's address lives (which host) is not here: hosts announce that themselves over gossip.
 */
import type { ChangeEvent, MemoryStore } from '../../store/index.ts';
import type { Node, Task } from '../../types/index.ts';
import { type NetTableDelta, NetTableRows } from './net-delta.ts';
import { MAX_NET_NETWORKS, type NetTable, type NetTableNetwork, type NetTableService } from './protocol.ts';

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

/** The networks whose addresses are allocated, by name (a short list, rebuilt whole). */
function netRows(store: MemoryStore): NetTableNetwork[] {
  const networks: NetTableNetwork[] = [];
  for (const n of [...store.list('networks')].sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))) {
    const cfg = n.IPAM?.Config[0];
    if (!cfg?.Subnet || !cfg.Gateway || !Number.isInteger(n.VNI)) continue; // not allocated yet
    if (networks.length >= MAX_NET_NETWORKS) break;
    networks.push({ id: n.ID, name: n.Spec.Name, subnet: cfg.Subnet, gateway: bare(cfg.Gateway), vni: n.VNI!, ...(n.Spec.Internal ? { internal: true } : {}) });
  }
  return networks;
}

/** One service's row; null when it has no VIP and no running task on a network (or is gone). */
function serviceRow(store: MemoryStore, id: string): NetTableService | null {
  const s = store.get('services', id);
  if (!s) return null;
  const vips = (s.Endpoint?.VirtualIPs ?? []).map((v) => ({ net: v.NetworkID, addr: bare(v.Addr) }));
  const tasks: NetTableService['tasks'] = [];
  for (const t of store.by('tasks', 'service', s.ID)) {
    if (!isNetBackend(t)) continue;
    for (const a of t.NetworksAttachments!) if (a.Addresses[0]) tasks.push({ net: a.Network.ID, addr: bare(a.Addresses[0]) });
  }
  if (vips.length === 0 && tasks.length === 0) return null;
  tasks.sort((a, b) => (a.net === b.net ? a.addr.localeCompare(b.addr) : a.net.localeCompare(b.net)));
  return { id: s.ID, name: s.Spec.Name, mode: s.Spec.EndpointSpec?.Mode ?? 'vip', vips, tasks };
}

function rowsOf(store: MemoryStore): NetTableRows {
  const rows = new NetTableRows();
  rows.networks = netRows(store);
  for (const s of store.list('services')) {
    const row = serviceRow(store, s.ID);
    if (row) rows.services.set(s.ID, row);
  }
  for (const n of store.list('nodes')) {
    const peer = n.Description.TLSInfo?.PeerID;
    if (peer) rows.hosts.set(n.ID, peer);
  }
  return rows;
}

/** The whole table from the store, in a stable order (networks and services by name, addresses as allocated). */
export function netTable(store: MemoryStore): NetTable {
  return rowsOf(store).table();
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The table kept from store changes: a change marks the rows it may alter (a service, a node's
 * host, the network list) and `flush()` recomputes only those, returning the rows that differ
 * from what was last flushed. Sessions hold the table as last flushed (`full()`), so a session that
 * registers between two flushes gets that and the next delta like every other.
 */
export class NetTableBuilder {
  #rows: NetTableRows | null = null;
  #full: NetTable | null = null;
  readonly #services = new Set<string>();
  readonly #hosts = new Set<string>();
  #nets = false;

  constructor(private readonly store: MemoryStore) {}

  /** A change awaits a flush. */
  get dirty(): boolean {
    return this.#rows !== null && (this.#nets || this.#services.size > 0 || this.#hosts.size > 0);
  }

  /** The table as last flushed (built from the store the first time). */
  full(): NetTable {
    this.#rows ??= rowsOf(this.store);
    return (this.#full ??= this.#rows.table());
  }

  /** Rows cut off by the bounds: a worker applying deltas would not see the same table, so send it whole. */
  get truncated(): boolean {
    return this.#rows?.truncated ?? false;
  }

  /** A change to the store (not a commit). */
  note(ev: Exclude<ChangeEvent, { kind: 'commit' }>): void {
    if (!this.#rows) return; // not built yet: the first full() reads the store
    if (ev.table === 'networks') this.#nets = true;
    else if (ev.table === 'services') this.#services.add(ev.object.ID);
    else if (ev.table === 'nodes') {
      if (ev.kind !== 'update' || (ev.object as Node).Description.TLSInfo?.PeerID !== (ev.old as Node).Description.TLSInfo?.PeerID) this.#hosts.add(ev.object.ID);
    } else if (ev.table === 'tasks') {
      const t = ev.object as Task;
      const old = ev.kind === 'update' ? ev.old as Task : undefined;
      if (ev.kind === 'delete' ? isNetBackend(t) : taskMattersForNet(t, old) || (old && old.ServiceID !== t.ServiceID)) {
        this.#services.add(t.ServiceID);
        if (old) this.#services.add(old.ServiceID);
      }
    }
  }

  /** Recompute the marked rows; the delta from the last flush, or null when nothing changed. */
  flush(): NetTableDelta | null {
    const rows = this.#rows;
    if (!rows) return null;
    const d: NetTableDelta = { services: [], removedServices: [], hosts: [], removedHosts: [] };
    if (this.#nets) {
      const nets = netRows(this.store);
      if (!sameJson(nets, rows.networks)) d.networks = nets;
    }
    for (const id of this.#services) {
      const row = serviceRow(this.store, id);
      const had = rows.services.get(id);
      if (!row) { if (had) d.removedServices.push(id); } else if (!had || !sameJson(row, had)) d.services.push(row);
    }
    for (const id of this.#hosts) {
      const peer = this.store.get('nodes', id)?.Description.TLSInfo?.PeerID;
      const had = rows.hosts.get(id);
      if (!peer) { if (had !== undefined) d.removedHosts.push(id); } else if (peer !== had) d.hosts.push({ node: id, peer });
    }
    this.#nets = false;
    this.#services.clear();
    this.#hosts.clear();
    if (!d.networks && !d.services.length && !d.removedServices.length && !d.hosts.length && !d.removedHosts.length) return null;
    rows.apply(d);
    this.#full = null;
    return d;
  }
}
