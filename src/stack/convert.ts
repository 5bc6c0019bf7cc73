/**
 * A loaded compose tree → what a stack is made of: networks, secrets and configs to create (with
 * Docker's stack names `NS_name` and the namespace label) and the services' specs. Pure: files named
 * by secrets/configs are read here, nothing is sent anywhere.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { IPAMConfig, ServiceSpec } from '../types/index.ts';
import { bool, checkKeys, labels, map, str, type Warn } from './fields.ts';
import { ComposeError, type Tree } from './load.ts';
import { convertService, NAMESPACE_LABEL, type Names } from './service.ts';

/** A hash of a secret's or config's content: immutable objects, so a changed file must be noticed. */
export const DIGEST_LABEL = 'io.shoal.stack.digest';

export interface NetworkPlan { Name: string; Labels: Record<string, string>; Driver: 'overlay'; Attachable: boolean; Internal: boolean; IPAM: { Config: IPAMConfig[] } }
export interface FilePlan { Name: string; Labels: Record<string, string>; Data: string }

export interface StackPlan {
  namespace: string;
  networks: NetworkPlan[];
  secrets: FilePlan[];
  configs: FilePlan[];
  services: ServiceSpec[];
  /** External objects the stack uses but does not own (they must exist). */
  external: { networks: string[]; secrets: string[]; configs: string[] };
}

const TOP_KEYS = ['version', 'name', 'services', 'networks', 'volumes', 'secrets', 'configs'] as const;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function checkNamespace(ns: string): string {
  if (!NAME_RE.test(ns) || ns.length > 63) throw new ComposeError(`invalid stack name "${ns}": letters, digits, "_", "." and "-", starting with a letter or digit, at most 63`);
  return ns;
}

function fileObjects(kind: 'secrets' | 'configs', tree: Tree, ns: string, dir: string, warn: Warn, names: Map<string, string>, external: string[]): FilePlan[] {
  const out: FilePlan[] = [];
  for (const [key, v] of Object.entries(map(tree[kind], kind))) {
    const path = `${kind}.${key}`;
    const o = map(v, path);
    checkKeys(o, ['file', 'external', 'name', 'labels', 'content', 'environment'], path, warn);
    const name = str(o.name, `${path}.name`);
    if (bool(o.external, `${path}.external`)) {
      names.set(key, name ?? key);
      external.push(name ?? key);
      continue;
    }
    let data: Buffer;
    if (o.file !== undefined) {
      const file = resolve(dir, str(o.file, `${path}.file`)!);
      try {
        data = readFileSync(file);
      } catch (e) {
        throw new ComposeError(`${path}.file: cannot read ${file}: ${(e as Error).message}`);
      }
    } else if (o.content !== undefined) data = Buffer.from(str(o.content, `${path}.content`)!);
    else if (o.environment !== undefined) {
      const env = str(o.environment, `${path}.environment`)!;
      const val = process.env[env];
      if (val === undefined) throw new ComposeError(`${path}.environment: variable ${env} is not set`);
      data = Buffer.from(val);
    } else throw new ComposeError(`${path}: give file, content, environment or external: true`);
    const real = name ?? `${ns}_${key}`;
    names.set(key, real);
    const digest = createHash('sha256').update(data).digest('hex');
    out.push({ Name: real, Labels: { ...labels(o.labels, `${path}.labels`), [NAMESPACE_LABEL]: ns, [DIGEST_LABEL]: digest }, Data: data.toString('base64') });
  }
  return out;
}

function networkObjects(tree: Tree, ns: string, warn: Warn, names: Map<string, string>, external: string[], used: Set<string>): NetworkPlan[] {
  const declared = map(tree.networks, 'networks');
  // Docker gives every service without networks the stack's `default` network.
  const all: [string, unknown][] = [...Object.entries(declared), ...(used.has('default') && !('default' in declared) ? [['default', null] as [string, unknown]] : [])];
  const out: NetworkPlan[] = [];
  for (const [key, v] of all) {
    const path = `networks.${key}`;
    const o = map(v, path);
    checkKeys(o, ['driver', 'attachable', 'internal', 'labels', 'external', 'name', 'ipam', 'driver_opts'], path, warn);
    const name = str(o.name, `${path}.name`);
    if (bool(o.external, `${path}.external`)) {
      names.set(key, name ?? key);
      external.push(name ?? key);
      continue;
    }
    const driver = str(o.driver, `${path}.driver`) ?? 'overlay';
    if (driver !== 'overlay') throw new ComposeError(`${path}.driver: "${driver}" is not supported: a stack's networks are overlay networks`);
    if (o.driver_opts !== undefined) warn(`${path}.driver_opts`);
    const ipam = map(o.ipam, `${path}.ipam`);
    checkKeys(ipam, ['config', 'driver'], `${path}.ipam`, warn);
    const config: IPAMConfig[] = (Array.isArray(ipam.config) ? ipam.config : []).map((c, i) => {
      const m = map(c, `${path}.ipam.config[${i}]`);
      checkKeys(m, ['subnet', 'gateway'], `${path}.ipam.config[${i}]`, warn);
      const subnet = str(m.subnet, `${path}.ipam.config[${i}].subnet`);
      if (!subnet) throw new ComposeError(`${path}.ipam.config[${i}].subnet: required`);
      const gateway = str(m.gateway, `${path}.ipam.config[${i}].gateway`);
      return { Subnet: subnet, ...(gateway ? { Gateway: gateway } : {}) };
    });
    const real = name ?? `${ns}_${key}`;
    names.set(key, real);
    out.push({
      Name: real, Driver: 'overlay', Labels: { ...labels(o.labels, `${path}.labels`), [NAMESPACE_LABEL]: ns },
      Attachable: bool(o.attachable, `${path}.attachable`) ?? false, Internal: bool(o.internal, `${path}.internal`) ?? false, IPAM: { Config: config },
    });
  }
  return out;
}

/** The networks services name (or `default` for a service that names none). */
function usedNetworks(services: Tree): Set<string> {
  const used = new Set<string>();
  for (const v of Object.values(services)) {
    const n = (v as Tree | null)?.networks;
    if (n === undefined || n === null) used.add('default');
  }
  return used;
}

export function convertStack(tree: Tree, namespace: string, opts: { dir: string; env: Record<string, string | undefined>; warn: Warn }): StackPlan {
  const ns = checkNamespace(namespace);
  const { dir, env, warn } = opts;
  checkKeys(tree, TOP_KEYS, '(top)', warn);
  const services = map(tree.services, 'services');
  if (!Object.keys(services).length) throw new ComposeError('services: the file defines no services');
  const names: Names = { namespace: ns, networks: new Map(), secrets: new Map(), configs: new Map(), volumes: new Map() };
  const external = { networks: [] as string[], secrets: [] as string[], configs: [] as string[] };
  const networks = networkObjects(tree, ns, warn, names.networks, external.networks, usedNetworks(services));
  const secrets = fileObjects('secrets', tree, ns, dir, warn, names.secrets, external.secrets);
  const configs = fileObjects('configs', tree, ns, dir, warn, names.configs, external.configs);
  for (const [key, v] of Object.entries(map(tree.volumes, 'volumes'))) {
    const o = map(v, `volumes.${key}`);
    checkKeys(o, ['external', 'name'], `volumes.${key}`, warn);
    names.volumes.set(key, str(o.name, `volumes.${key}.name`) ?? (bool(o.external, `volumes.${key}.external`) ? key : `${ns}_${key}`));
  }
  const specs = Object.entries(services).map(([name, v]) => convertService(name, v, { names, dir, env, warn }));
  return { namespace: ns, networks, secrets, configs, services: specs, external };
}
