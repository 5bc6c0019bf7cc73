/**
 * The endpoint table every host's ingress mesh routes by: for each published port of each service,
 * the service's running tasks and where any host reaches them. Read from the store only (services'
 * allocated `Endpoint.Ports`, tasks, nodes); the dispatcher sends it whole to every worker when it
 * changes.
 *
 * How a task is reached: a task on the host's network (runtime `process`, and third-party runtimes
 * that run on it) listens on its target port on its host, so it is `<node address>:<target port>`.
 * The node address is the one the node gave in its description (`Description.Addr`: its `--mesh-addr`
 * or advertised address), else the address its session came from (`Status.Addr`). Containers and VMs
 * have addresses of their own (a Docker bridge, a tap device) that other hosts cannot reach until the
 * overlay is wired; without an overlay network they are left out of the table. A task on an overlay
 * network (any runtime) listens on its overlay address, which only its own host reaches: the backend
 * says so in `inner`, and other hosts go through that host's mesh on the published port.
 */
import type { MemoryStore } from '../../store/index.ts';
import { type Node, runtimeOf, type Service, type Task } from '../../types/index.ts';
import { type EndpointBackend, type EndpointPort, MAX_ENDPOINT_BACKENDS, MAX_ENDPOINT_PORTS } from './protocol.ts';

/** Runtimes whose tasks have their own network address, unreachable from other hosts for now. */
const OWN_ADDRESS_RUNTIMES = new Set(['container', 'vm']);

/** Where other hosts reach a node's host-network tasks; null while it has no known address. */
export function meshAddrOf(n: Node | undefined): string | null {
  if (!n) return null;
  const d = (n.Description as { Addr?: unknown }).Addr;
  if (typeof d === 'string' && d !== '' && d !== '0.0.0.0' && d !== '::') return d;
  return n.Status.Addr || null;
}

/** Does this change of a task possibly change the table? (Most status changes do not.) */
export function taskMatters(t: Task, old?: Task): boolean {
  if (!old) return isBackend(t);
  return isBackend(t) !== isBackend(old) || (isBackend(t) && old.NodeID !== t.NodeID);
}

function isBackend(t: Task): boolean {
  return t.Status.State === 'running' && t.DesiredState === 'running' && (!!t.NetworksAttachments?.length || !OWN_ADDRESS_RUNTIMES.has(runtimeOf(t.Spec)));
}

/** A task on an overlay network listens on its first overlay address, reachable from its own host only. */
function overlayAddrOf(t: Task): string | null {
  const a = t.NetworksAttachments?.[0]?.Addresses[0];
  return a ? a.split('/')[0]! : null;
}

/** The table, in a stable order (services by name, ports by number, backends by address). */
export function endpointTable(store: MemoryStore): EndpointPort[] {
  const out: EndpointPort[] = [];
  const services = store.list('services').filter((s) => publishedPorts(s).length > 0)
    .sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name));
  for (const s of services) {
    const backendsFor = (target: number, published: number): EndpointBackend[] => {
      const list: EndpointBackend[] = [];
      for (const t of store.by('tasks', 'service', s.ID)) {
        if (!isBackend(t)) continue;
        const addr = meshAddrOf(store.get('nodes', t.NodeID));
        if (!addr) continue;
        const own = overlayAddrOf(t);
        // On an overlay: its host reaches it at its address; other hosts through that host's mesh.
        if (own) list.push({ node: t.NodeID, addr, port: published, healthy: true, inner: { addr: own, port: target } });
        else list.push({ node: t.NodeID, addr, port: target, healthy: true });
      }
      list.sort((a, b) => (a.addr === b.addr ? a.node.localeCompare(b.node) : a.addr.localeCompare(b.addr)));
      return list.slice(0, MAX_ENDPOINT_BACKENDS);
    };
    for (const p of publishedPorts(s)) {
      if (out.length >= MAX_ENDPOINT_PORTS) return out;
      out.push({
        service: s.Spec.Name, port: p.PublishedPort!, protocol: p.Protocol ?? 'tcp', target: p.TargetPort,
        mode: p.PublishMode ?? 'ingress', backends: backendsFor(p.TargetPort, p.PublishedPort!),
      });
    }
  }
  return out;
}

/** The ports the allocator gave the service (the spec's until it has run). */
function publishedPorts(s: Service) {
  return (s.Endpoint?.Ports ?? []).filter((p) => Number.isInteger(p.PublishedPort) && p.PublishedPort! > 0 && Number.isInteger(p.TargetPort) && p.TargetPort > 0);
}
