/**
 * The names the embedded DNS server of an overlay network answers, from the dispatcher's table:
 * what every task on the network sees, and the wider views of tasks on several networks.
 */
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import type { ServiceRecord } from './dns.ts';
import type { LocalTask } from './network-state.ts';

/** The names network `net`'s tasks see: each service there, by its VIP on it or its task addresses. */
export function serviceRecords(table: NetTable, net: string): ServiceRecord[] {
  const out: ServiceRecord[] = [];
  for (const s of table.services) {
    const vips = s.vips.filter((v) => v.net === net).map((v) => v.addr);
    const taskAddrs = s.tasks.filter((t) => t.net === net).map((t) => t.addr);
    if (vips.length === 0 && taskAddrs.length === 0) continue;
    const mode = s.mode === 'vip' && vips.length > 0 ? 'vip' : 'dnsrr';
    out.push({ name: s.name, mode, ...(mode === 'vip' ? { vips } : {}), taskAddrs });
  }
  return out;
}

/**
 * What the local tasks on several networks see when they ask network `net`'s DNS (the first of their
 * networks, their resolver): the names of all their networks, `net`'s first when a name is on two.
 * Keyed by the task's address on `net`.
 */
export function clientViews(table: NetTable, tasks: Iterable<LocalTask>, net: string): Map<string, ServiceRecord[]> {
  const views = new Map<string, ServiceRecord[]>();
  for (const t of tasks) {
    const addr = t.nets.get(net);
    if (!addr || t.nets.size < 2) continue;
    const records = serviceRecords(table, net);
    const have = new Set(records.map((r) => r.name.toLowerCase()));
    for (const other of t.nets.keys()) {
      if (other === net) continue;
      for (const r of serviceRecords(table, other)) if (!have.has(r.name.toLowerCase())) { have.add(r.name.toLowerCase()); records.push(r); }
    }
    views.set(addr.split('/')[0]!, records);
  }
  return views;
}
