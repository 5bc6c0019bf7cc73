/**
 * What one host's overlay plumbing should be, read from the store's tasks and nodes: for every
 * network that has a task on this host, the network (subnet, gateway, VXLAN id), the local tasks to
 * attach, and the forwarding table (every task of the network, behind its node's address). Pure:
 * the worker-side wiring (not built yet) feeds it what it knows and hands the result to
 * OverlayNetwork.
 */
import { isActiveOnNode, type Node, type Task, VXLAN_OPTION } from '../types/index.ts';
import type { ForwardingEntry } from './overlay.ts';

export interface NetworkPlan {
  network: { id: string; name: string; subnet: string; gateway?: string; vni: number };
  /** Tasks on this host: attach each (its namespace is the executor's business). */
  local: { taskId: string; address: string }[];
  /** Every task of the network on a node with a known address, this host's included. */
  forwarding: ForwardingEntry[];
}

/** Tasks that occupy their address on a node now: assigned up to running. */
function placed(t: Task): boolean {
  return !!t.NodeID && isActiveOnNode(t.Status.State) && !!t.NetworksAttachments?.length;
}

export function overlayPlan(nodeId: string, tasks: readonly Task[], nodes: readonly Node[]): Map<string, NetworkPlan> {
  const addrOf = new Map(nodes.map((n) => [n.ID, n.Status.Addr]));
  const plans = new Map<string, NetworkPlan>();
  const live = tasks.filter(placed);
  // Networks with a task here, as the newest attachment describes them.
  for (const t of live) {
    if (t.NodeID !== nodeId) continue;
    for (const a of t.NetworksAttachments!) {
      const n = a.Network;
      const cfg = n.IPAMOptions.Configs[0];
      const vni = Number(n.DriverState.Options[VXLAN_OPTION]);
      if (!cfg || !Number.isInteger(vni)) continue;
      let plan = plans.get(n.ID);
      if (!plan) plans.set(n.ID, (plan = { network: { id: n.ID, name: n.Spec.Name, subnet: cfg.Subnet, gateway: cfg.Gateway, vni }, local: [], forwarding: [] }));
      plan.local.push({ taskId: t.ID, address: a.Addresses[0]! });
    }
  }
  for (const t of live) {
    const hostAddr = addrOf.get(t.NodeID);
    if (!hostAddr) continue; // a node whose address is unknown cannot be reached yet
    for (const a of t.NetworksAttachments!) {
      const plan = plans.get(a.Network.ID);
      if (plan && a.Addresses[0]) plan.forwarding.push({ hostAddr, taskAddr: a.Addresses[0] });
    }
  }
  return plans;
}
