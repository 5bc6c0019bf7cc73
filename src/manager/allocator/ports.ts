/**
 * Published ports. Ingress ports are cluster-wide: one (protocol, port) belongs to one service. A port
 * the user asks for is checked by the API (`findPortConflict`, a 409); a port left out is given one
 * from 30000–32767 by the allocator, and keeps it across spec updates while the same target is
 * published.
 */
import { ConflictError } from '../../lib/errors.ts';
import type { PortConfig, Service, ServiceSpec } from '../../types/index.ts';

export const PUBLISHED_PORT_FIRST = 30000;
export const PUBLISHED_PORT_LAST = 32767;

/** What findPortConflict reads: the store, or anything that lists services. */
export interface ServiceSource {
  list(table: 'services'): Service[];
}

export interface PortConflict {
  protocol: string;
  port: number;
  /** The service that holds the port; equals the checked one for a port listed twice in one spec. */
  serviceId: string;
  serviceName: string;
  message: string;
}

const protocolOf = (p: PortConfig) => p.Protocol ?? 'tcp';
const isIngress = (p: PortConfig) => (p.PublishMode ?? 'ingress') === 'ingress';
const keyOf = (protocol: string, port: number) => `${port}/${protocol}`;

/** Ingress ports a service holds: allocated ones, and those its spec asks for explicitly. */
function portsHeldBy(s: Service): PortConfig[] {
  const held = (s.Endpoint?.Ports ?? []).filter(isIngress);
  const asked = (s.Spec.EndpointSpec?.Ports ?? []).filter((p) => isIngress(p) && p.PublishedPort);
  return [...held, ...asked].filter((p) => !!p.PublishedPort);
}

/**
 * The first explicitly requested ingress port of `spec` that another service holds (or that `spec`
 * lists twice), or null. `serviceId` is the service being updated (its own ports are not a clash).
 */
export function findPortConflict(store: ServiceSource, spec: ServiceSpec, serviceId?: string): PortConflict | null {
  const wanted = (spec.EndpointSpec?.Ports ?? []).filter((p) => isIngress(p) && p.PublishedPort);
  if (wanted.length === 0) return null;
  const seen = new Set<string>();
  for (const p of wanted) {
    const k = keyOf(protocolOf(p), p.PublishedPort!);
    if (seen.has(k))
      return { protocol: protocolOf(p), port: p.PublishedPort!, serviceId: serviceId ?? '', serviceName: spec.Name, message: `port ${k} is published twice in the endpoint spec` };
    seen.add(k);
  }
  for (const s of store.list('services')) {
    if (s.ID === serviceId) continue;
    for (const p of portsHeldBy(s)) {
      const k = keyOf(protocolOf(p), p.PublishedPort!);
      if (seen.has(k))
        return {
          protocol: protocolOf(p),
          port: p.PublishedPort!,
          serviceId: s.ID,
          serviceName: s.Spec.Name,
          message: `port ${k} is already in use by service "${s.Spec.Name}" (${s.ID}); choose another published port or leave it out to get one from ${PUBLISHED_PORT_FIRST}-${PUBLISHED_PORT_LAST}`,
        };
    }
  }
  return null;
}

/** findPortConflict, as a ConflictError (409) for the API. */
export function checkPortConflict(store: ServiceSource, spec: ServiceSpec, serviceId?: string): void {
  const c = findPortConflict(store, spec, serviceId);
  if (c) throw new ConflictError(c.message);
}

/**
 * Ports allocated to every service but `exceptId`, as `port/protocol` keys. Only allocations count
 * here (not ports merely asked for), so the service that was allocated first keeps a contested port.
 */
export function portsInUse(services: readonly Service[], exceptId?: string): Set<string> {
  const used = new Set<string>();
  for (const s of services) {
    if (s.ID === exceptId) continue;
    for (const p of s.Endpoint?.Ports ?? []) if (isIngress(p) && p.PublishedPort) used.add(keyOf(protocolOf(p), p.PublishedPort));
  }
  return used;
}

export type PortAllocation = { ok: true; ports: PortConfig[] } | { ok: false; message: string };

/**
 * The service's published ports: explicit ones as asked, missing ingress ones kept from the previous
 * allocation when the same target is still published, else the lowest free port of the range.
 * `inUse` holds the keys (`port/protocol`) of the other services (see portsInUse).
 */
export function allocatePorts(service: Service, inUse: ReadonlySet<string>): PortAllocation {
  const spec = service.Spec.EndpointSpec?.Ports ?? [];
  const previous = (service.Endpoint?.Ports ?? []).filter(isIngress);
  const mine = new Set<string>();
  const out: PortConfig[] = [];
  // Explicit ports first, so that a dynamic one never takes a port asked for in the same spec.
  for (const p of spec) {
    if (!isIngress(p) || !p.PublishedPort) continue;
    const k = keyOf(protocolOf(p), p.PublishedPort);
    if (inUse.has(k) || mine.has(k)) return { ok: false, message: `port ${k} is already in use by another service` };
    mine.add(k);
  }
  for (const p of spec) {
    const port: PortConfig = { ...p, Protocol: protocolOf(p), PublishMode: p.PublishMode ?? 'ingress' };
    if (isIngress(p) && !p.PublishedPort) {
      const prev = previous.find(
        (q) => q.TargetPort === p.TargetPort && protocolOf(q) === protocolOf(p) && q.PublishedPort && !inUse.has(keyOf(protocolOf(q), q.PublishedPort)) && !mine.has(keyOf(protocolOf(q), q.PublishedPort)),
      );
      let chosen = prev?.PublishedPort;
      for (let n = PUBLISHED_PORT_FIRST; !chosen && n <= PUBLISHED_PORT_LAST; n++) {
        const k = keyOf(protocolOf(p), n);
        if (!inUse.has(k) && !mine.has(k)) chosen = n;
      }
      if (!chosen) return { ok: false, message: `no free published port left in ${PUBLISHED_PORT_FIRST}-${PUBLISHED_PORT_LAST}` };
      mine.add(keyOf(protocolOf(p), chosen));
      port.PublishedPort = chosen;
    }
    out.push(port);
  }
  return { ok: true, ports: out };
}
