/**
 * `POST /networks/create` bodies (Docker's NetworkCreateRequest) to a NetworkSpec, and a service's
 * `TaskTemplate.Networks` resolved to network IDs. Every mistake is a 400 naming the field.
 */
import { z } from 'zod';
import { type Cidr, contains, firstHost, formatCidr, lastHost, overlaps, parseCidr, parseIpv4 } from '../lib/cidr.ts';
import { InvalidArgumentError, NotFoundError } from '../lib/errors.ts';
import { MAX_SUBNET_PREFIX } from '../manager/allocator/networks.ts';
import { newId } from '../lib/ids.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Network, NetworkSpec, ServiceSpec } from '../types/index.ts';
import { validate } from './schemas.ts';

const labels = z.record(z.string().max(1024), z.string().max(64 * 1024));

export const networkCreateSchema = z.looseObject({
  Name: z.string().max(63, 'expected at most 63 characters').regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'expected letters, digits, "_", "." or "-", starting with a letter or digit'),
  Driver: z.string().max(64).optional(),
  Scope: z.string().max(16).optional(),
  Internal: z.boolean().optional(),
  Attachable: z.boolean().optional(),
  Ingress: z.boolean().optional(),
  EnableIPv6: z.boolean().nullable().optional(),
  CheckDuplicate: z.boolean().optional(),
  Labels: labels.nullable().optional(),
  Options: z.record(z.string(), z.string()).nullable().optional(),
  IPAM: z
    .looseObject({
      Driver: z.string().max(64).optional(),
      Config: z.array(z.looseObject({ Subnet: z.string().max(64).optional(), Gateway: z.string().max(64).optional(), IPRange: z.string().max(64).optional() })).max(16).nullable().optional(),
      Options: z.record(z.string(), z.string()).nullable().optional(),
    })
    .nullable()
    .optional(),
});

/** Ranges a task network must not use: this host, multicast and reserved, "this network". */
const RESERVED = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3'].map((s) => parseCidr(s) as Cidr);

function checkSubnet(field: string, raw: string | undefined, others: readonly Network[]): Cidr {
  if (!raw) throw new InvalidArgumentError(`${field}: required when IPAM.Config is given (e.g. 10.0.9.0/24)`);
  const c = parseCidr(raw);
  if (typeof c === 'string') throw new InvalidArgumentError(`${field}: ${c}`);
  if (c.prefix > MAX_SUBNET_PREFIX) throw new InvalidArgumentError(`${field}: ${raw} is too small: an overlay subnet needs at least a /${MAX_SUBNET_PREFIX} (a gateway, virtual IPs and task addresses)`);
  const bad = RESERVED.find((r) => overlaps(r, c));
  if (bad) throw new InvalidArgumentError(`${field}: ${raw} overlaps the reserved range ${formatCidr(bad)}`);
  for (const o of others) {
    for (const cfg of [...o.Spec.IPAM.Config, ...(o.IPAM?.Config ?? [])]) {
      const oc = parseCidr(cfg.Subnet);
      if (typeof oc !== 'string' && overlaps(oc, c)) throw new InvalidArgumentError(`${field}: ${raw} overlaps ${cfg.Subnet} of network ${o.Spec.Name}`);
    }
  }
  return c;
}

export function normalizeNetworkSpec(body: unknown, store: MemoryStore): NetworkSpec {
  const input = validate(networkCreateSchema, body);
  // The docker CLI sends empty strings for what it leaves out.
  if ((input.Driver || 'overlay') !== 'overlay') throw new InvalidArgumentError(`Driver: "${input.Driver}" is not supported: shoal networks use the overlay driver`);
  if ((input.Scope || 'swarm') !== 'swarm') throw new InvalidArgumentError(`Scope: "${input.Scope}" is not supported: overlay networks have swarm scope`);
  if (input.Ingress) throw new InvalidArgumentError('Ingress: shoal makes the ingress network itself, the first time a container or VM service publishes a port');
  if (input.EnableIPv6) throw new InvalidArgumentError('EnableIPv6: overlay networks are IPv4 only for now');
  if (input.IPAM?.Driver && input.IPAM.Driver !== 'default') throw new InvalidArgumentError(`IPAM.Driver: "${input.IPAM.Driver}" is not supported (only "default")`);
  const configs = input.IPAM?.Config ?? [];
  if (configs.length > 1) throw new InvalidArgumentError('IPAM.Config: give at most one subnet per network');
  const spec: NetworkSpec = { Name: input.Name, Labels: input.Labels ?? {}, Driver: 'overlay', IPAM: { Config: [] } };
  if (input.Internal) spec.Internal = true;
  if (input.Attachable) spec.Attachable = true;
  const cfg = configs[0];
  if (cfg) {
    if (cfg.Gateway === '') delete cfg.Gateway;
    if (cfg.IPRange) throw new InvalidArgumentError('IPAM.Config[0].IPRange: not supported; give a Subnet only');
    const subnet = checkSubnet('IPAM.Config[0].Subnet', cfg.Subnet, store.list('networks'));
    if (cfg.Gateway !== undefined) {
      const gw = parseIpv4(cfg.Gateway);
      if (gw === null) throw new InvalidArgumentError(`IPAM.Config[0].Gateway: "${cfg.Gateway}" is not an IPv4 address`);
      if (!contains(subnet, gw) || gw < firstHost(subnet) || gw > lastHost(subnet)) throw new InvalidArgumentError(`IPAM.Config[0].Gateway: ${cfg.Gateway} is not a host address of ${cfg.Subnet}`);
    }
    spec.IPAM.Config.push({ Subnet: formatCidr(subnet), ...(cfg.Gateway ? { Gateway: cfg.Gateway } : {}) });
  }
  return spec;
}

/** A network by ID, name or unique ID prefix. */
export function findNetwork(store: MemoryStore, ref: string): Network {
  const n = store.get('networks', ref) ?? store.by('networks', 'name', ref)[0];
  if (n) return n;
  const hits = ref ? store.list('networks').filter((o) => o.ID.startsWith(ref)) : [];
  if (hits.length > 1) throw new InvalidArgumentError(`network "${ref}" is ambiguous: ${hits.length} IDs start with it`);
  if (!hits[0]) throw new NotFoundError(`network ${ref} not found`);
  return hits[0];
}

/**
 * `TaskTemplate.Networks[].Target` (a name, ID or prefix) becomes the network's ID, as Docker's
 * daemon does; the deprecated top-level `Networks` moves into the task template.
 */
export function resolveServiceNetworks(store: MemoryStore, spec: ServiceSpec & { Networks?: unknown }): void {
  const tt = spec.TaskTemplate;
  if (spec.Networks !== undefined) {
    if (!tt.Networks?.length) tt.Networks = spec.Networks as typeof tt.Networks;
    delete spec.Networks;
  }
  if (!tt.Networks?.length) {
    delete tt.Networks;
    return;
  }
  const seen = new Set<string>();
  tt.Networks = tt.Networks.map((n, i) => {
    const field = `TaskTemplate.Networks[${i}].Target`;
    if (!n || typeof n !== 'object' || typeof n.Target !== 'string' || !n.Target) throw new InvalidArgumentError(`${field}: expected a network name or ID`);
    let net: Network;
    try {
      net = findNetwork(store, n.Target);
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`${field}: network ${n.Target} not found; create it with "shoal network create --driver overlay ${n.Target}"`);
      throw e;
    }
    if (seen.has(net.ID)) throw new InvalidArgumentError(`${field}: network ${net.Spec.Name} is listed twice`);
    seen.add(net.ID);
    return { ...n, Target: net.ID };
  });
}

/** The network containers and VMs with ingress-published ports join when they name none (Swarm's). */
export const INGRESS_NETWORK = 'ingress';
export const INGRESS_SUBNET = '10.0.0.0/24';
const ISOLATED_RUNTIMES = new Set(['container', 'vm']);

/**
 * A container or VM service that publishes an ingress port and names no network joins `ingress`,
 * made here the first time (10.0.0.0/24 when free, as Docker's): its tasks have addresses of their
 * own, which the mesh reaches only over an overlay. Processes run on the host's network and need none.
 * The network shows in `TaskTemplate.Networks`, so `service inspect` says where the tasks are.
 */
export async function attachIngress(store: MemoryStore, spec: ServiceSpec & { Networks?: unknown }, signal?: AbortSignal): Promise<void> {
  const tt = spec.TaskTemplate;
  if (!ISOLATED_RUNTIMES.has(tt.Runtime ?? '') || tt.Networks?.length || (Array.isArray(spec.Networks) && spec.Networks.length)) return;
  if (!(spec.EndpointSpec?.Ports ?? []).some((p) => (p.PublishMode ?? 'ingress') === 'ingress')) return;
  if (!store.list('networks').some((n) => n.Spec.Name === INGRESS_NETWORK)) {
    const taken = store.list('networks').some((n) => [...n.Spec.IPAM.Config, ...(n.IPAM?.Config ?? [])].some((c) => {
      const a = parseCidr(c.Subnet);
      return typeof a !== 'string' && overlaps(a, parseCidr(INGRESS_SUBNET) as Cidr);
    }));
    const net: Network = {
      ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
      Spec: { Name: INGRESS_NETWORK, Labels: { 'io.shoal.network.ingress': 'true' }, Driver: 'overlay', IPAM: { Config: taken ? [] : [{ Subnet: INGRESS_SUBNET }] } },
    };
    try {
      await store.update((tx) => tx.create('networks', net), signal);
    } catch (e) {
      // Made at the same moment by another request: use that one.
      if (!store.list('networks').some((n) => n.Spec.Name === INGRESS_NETWORK)) throw e;
    }
  }
  tt.Networks = [{ Target: INGRESS_NETWORK }];
}
