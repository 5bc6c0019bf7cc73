/**
 * Invariants of the networks table, checked when a batch is applied (so that they hold on every
 * replica whatever raced): names are unique, VXLAN identifiers are unique, and subnets never overlap.
 * Only the networks the batch writes are checked, against the table as it will be after the batch.
 */
import { type Cidr, overlaps, parseCidr } from '../lib/cidr.ts';
import type { Network } from '../types/index.ts';
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

export function checkNetworkActions(actions: readonly Action[], current: readonly Network[]): ApplyResult | null {
  const after = new Map(current.map((n) => [n.ID, n]));
  const written: Network[] = [];
  for (const a of actions) {
    if (a.table !== 'networks') continue;
    if (a.op === 'delete') after.delete(a.id);
    else {
      after.set(a.object.ID, a.object as Network);
      written.push(a.object as Network);
    }
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
