/**
 * Invariants of the networks table, checked when a batch is applied (so that they hold on every
 * replica whatever raced): names are unique, VXLAN identifiers are unique, subnets never overlap, a
 * network that a service's spec names is not deleted, and a service does not start naming a network
 * that does not exist. Only what the batch writes is checked, against the tables as they will be.
 */
import { type Cidr, overlaps, parseCidr } from '../lib/cidr.ts';
import type { Network, Service } from '../types/index.ts';
import type { Action, ApplyResult } from './actions.ts';

/** Every subnet a network holds or asks for (asked-for ones count, so nobody else gets them). */
function subnetsOf(n: Network): Cidr[] {
  const out: Cidr[] = [];
  for (const c of [...(n.Spec.IPAM?.Config ?? []), ...(n.IPAM?.Config ?? [])]) {
    const p = parseCidr(c.Subnet);
    if (typeof p !== 'string') out.push(p);
  }
  return out;
}

const targets = (s: Service | undefined) => new Set((s?.Spec.TaskTemplate.Networks ?? []).map((n) => n.Target));

export function checkNetworkActions(actions: readonly Action[], current: readonly Network[], services: readonly Service[]): ApplyResult | null {
  const after = new Map(current.map((n) => [n.ID, n]));
  const written: Network[] = [];
  for (const a of actions) {
    if (a.table !== 'networks') continue;
    if (a.op === 'delete') after.delete(a.id);
    else if (a.op !== 'patch') {
      after.set(a.object.ID, a.object as Network);
      written.push(a.object as Network);
    }
  }
  const svcNow = new Map(services.map((s) => [s.ID, s]));
  const svcAfter = new Map(svcNow);
  for (const a of actions) {
    if (a.table !== 'services') continue;
    if (a.op === 'delete') {
      svcAfter.delete(a.id);
      continue;
    }
    if (a.op === 'patch') continue; // tasks only (apply() refuses any other)
    // Only networks the service newly names must exist: an older service is never stuck by this.
    const before = targets(svcNow.get(a.object.ID));
    for (const t of targets(a.object as Service)) {
      if (!before.has(t) && !after.has(t)) return { ok: false, status: 404, message: `network ${t} not found` };
    }
    svcAfter.set(a.object.ID, a.object as Service);
  }
  for (const a of actions) {
    if (a.table !== 'networks' || a.op !== 'delete' || after.has(a.id)) continue;
    const users = [...svcAfter.values()].filter((s) => targets(s).has(a.id)).map((s) => s.Spec.Name).sort();
    if (users.length) return { ok: false, status: 409, message: `network ${a.id} is in use by service${users.length > 1 ? 's' : ''} ${users.join(', ')}` };
  }
  for (const n of written) {
    if (after.get(n.ID) !== n) continue; // deleted later in the same batch
    for (const o of after.values()) {
      if (o.ID === n.ID) continue;
      if (o.Spec.Name === n.Spec.Name) return { ok: false, status: 409, message: `network with name ${n.Spec.Name} already exists` };
      if (n.VNI !== undefined && o.VNI === n.VNI) return { ok: false, status: 409, message: `VXLAN id ${n.VNI} is already used by network ${o.Spec.Name}` };
      for (const a of subnetsOf(n))
        for (const b of subnetsOf(o))
          if (overlaps(a, b)) return { ok: false, status: 409, message: `subnet of network ${n.Spec.Name} overlaps the subnet of network ${o.Spec.Name}` };
    }
  }
  return null;
}
