/**
 * The network table as rows (networks whole, services by id, hosts by node) and the delta that
 * carries it from one state to the next. The dispatcher sends the whole table once per session and
 * then only the rows that changed; both ends assemble the table from the rows with `table()`, so
 * a worker's view after any run of deltas is the table a full rebuild gives (same order, same bounds).
 */
import { MAX_NET_ADDRS, MAX_NET_SERVICES, type NetTable, type NetTableDelta, type NetTableNetwork, type NetTableService } from './protocol.ts';

export type { NetTableDelta };

export class NetTableRows {
  networks: NetTableNetwork[] = [];
  readonly services = new Map<string, NetTableService>();
  /** Node id → libp2p peer id. */
  readonly hosts = new Map<string, string>();

  static from(t: NetTable): NetTableRows {
    const r = new NetTableRows();
    r.networks = t.networks;
    for (const s of t.services) r.services.set(s.id, s);
    for (const h of t.hosts ?? []) r.hosts.set(h.node, h.peer);
    return r;
  }

  apply(d: NetTableDelta): void {
    if (d.networks) this.networks = d.networks;
    for (const id of d.removedServices) this.services.delete(id);
    for (const s of d.services) this.services.set(s.id, s);
    for (const n of d.removedHosts) this.hosts.delete(n);
    for (const h of d.hosts) this.hosts.set(h.node, h.peer);
  }

  /** Would the table leave rows out (past MAX_NET_SERVICES or MAX_NET_ADDRS)? Then deltas cannot stand for it. */
  get truncated(): boolean {
    if (this.services.size > MAX_NET_SERVICES) return true;
    let addrs = 0;
    for (const s of this.services.values()) addrs += s.tasks.length;
    return addrs > MAX_NET_ADDRS;
  }

  /** The table: services by name (cut at the bounds, as they were always cut), hosts by node. */
  table(): NetTable {
    const services: NetTableService[] = [];
    let addrs = 0;
    for (const s of [...this.services.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (services.length >= MAX_NET_SERVICES || addrs + s.tasks.length > MAX_NET_ADDRS) break;
      addrs += s.tasks.length;
      services.push(s);
    }
    const hosts = [...this.hosts].map(([node, peer]) => ({ node, peer })).sort((a, b) => a.node.localeCompare(b.node));
    return { networks: this.networks, services, hosts };
  }
}
