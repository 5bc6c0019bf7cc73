/**
 * One compose service → a ServiceSpec, as `docker stack deploy` converts it, plus our extension
 * `x-shoal-runtime: process|vm|container` (default container): a process runs `entrypoint` +
 * `command` on the host; a VM boots `x-shoal-vm: {kernel, initrd, disk, cmdline}`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type {
  ConfigReference, HealthConfig, Mount, NetworkAttachmentConfig, PortConfig, ResourceRequirements, RestartPolicy, SecretReference, ServiceMode, ServiceSpec, TaskSpec, UpdateConfig,
} from '../types/index.ts';
import { parsePublish } from '../cli/units.ts';
import { bool, checkKeys, cpus, duration, int, keyValues, labels, map, size, str, type Warn, words } from './fields.ts';
import { ComposeError, isMap, parseEnvFile, type Tree } from './load.ts';

export const NAMESPACE_LABEL = 'com.docker.stack.namespace';
export const IMAGE_LABEL = 'com.docker.stack.image';

const SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'networks', 'volumes', 'deploy', 'healthcheck', 'secrets', 'configs',
  'labels', 'working_dir', 'user', 'hostname', 'stop_grace_period', 'stop_signal', 'init',
] as const;
const DEPLOY_KEYS = ['mode', 'replicas', 'resources', 'placement', 'update_config', 'rollback_config', 'restart_policy', 'labels', 'endpoint_mode'] as const;

/** What a service refers to, by its compose name → the object's real name. */
export interface Names {
  namespace: string;
  networks: Map<string, string>;
  secrets: Map<string, string>;
  configs: Map<string, string>;
  /** Named volumes → their real name (`NS_vol` unless external). */
  volumes: Map<string, string>;
}

export interface ServiceContext { names: Names; dir: string; env: Record<string, string | undefined>; warn: Warn }

function environment(svc: Tree, path: string, ctx: ServiceContext): string[] {
  const fromFiles = (words(svc.env_file, `${path}.env_file`) ?? []).flatMap((f) => {
    const file = resolve(ctx.dir, f);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ComposeError(`${path}.env_file: cannot read ${file}: ${(e as Error).message}`);
    }
    return Object.entries(parseEnvFile(text, file)).map(([k, v]) => `${k}=${v}`);
  });
  const env = [...fromFiles, ...keyValues(svc.environment, `${path}.environment`, ctx.env)];
  // A later KEY replaces an earlier one (environment: over env_file).
  const byKey = new Map(env.map((e) => [e.slice(0, e.indexOf('=')), e]));
  return [...byKey.values()];
}

function ports(v: unknown, path: string): PortConfig[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ComposeError(`${path}: expected a list`);
  return v.map((p, i) => {
    const at = `${path}[${i}]`;
    if (isMap(p)) {
      const target = int(p.target, `${at}.target`, 1);
      if (!target) throw new ComposeError(`${at}.target: required`);
      const pc: PortConfig = { Protocol: (str(p.protocol, `${at}.protocol`) ?? 'tcp') as 'tcp' | 'udp', TargetPort: target, PublishMode: (str(p.mode, `${at}.mode`) ?? 'ingress') as 'ingress' | 'host' };
      if (!['tcp', 'udp'].includes(pc.Protocol!)) throw new ComposeError(`${at}.protocol: expected tcp or udp`);
      if (!['ingress', 'host'].includes(pc.PublishMode!)) throw new ComposeError(`${at}.mode: expected ingress or host`);
      const published = int(p.published, `${at}.published`, 1);
      if (published) pc.PublishedPort = published;
      return pc;
    }
    const s = str(p, at)!;
    try {
      // Compose allows an address before the published port; the ingress mesh listens on every address.
      return parsePublish(s.replace(/^[\d.]+:(?=\d+:)/, ''), at);
    } catch (e) {
      throw new ComposeError((e as Error).message.replace(`--${at}`, at));
    }
  });
}

function networks(svc: Tree, path: string, ctx: ServiceContext): NetworkAttachmentConfig[] {
  const v = svc.networks ?? ['default'];
  const entries: [string, unknown][] = Array.isArray(v) ? v.map((n, i) => [str(n, `${path}.networks[${i}]`)!, null]) : Object.entries(map(v, `${path}.networks`));
  return entries.map(([name, opts]) => {
    const real = ctx.names.networks.get(name);
    if (!real) throw new ComposeError(`${path}.networks: network "${name}" is not defined in the top-level networks`);
    const o = map(opts, `${path}.networks.${name}`);
    checkKeys(o, ['aliases'], `${path}.networks.${name}`, ctx.warn);
    const aliases = words(o.aliases, `${path}.networks.${name}.aliases`);
    return { Target: real, ...(aliases?.length ? { Aliases: aliases } : {}) };
  });
}

function fileRefs<K extends 'secrets' | 'configs'>(kind: K, svc: Tree, path: string, ctx: ServiceContext): (K extends 'secrets' ? SecretReference : ConfigReference)[] {
  const v = svc[kind];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ComposeError(`${path}.${kind}: expected a list`);
  return v.map((r, i) => {
    const at = `${path}.${kind}[${i}]`;
    const o = isMap(r) ? r : { source: str(r, at) };
    checkKeys(o, ['source', 'target', 'uid', 'gid', 'mode'], at, ctx.warn);
    const source = str(o.source, `${at}.source`);
    const real = source && ctx.names[kind].get(source);
    if (!real) throw new ComposeError(`${at}: ${kind.slice(0, -1)} "${source ?? ''}" is not defined in the top-level ${kind}`);
    const mode = o.mode === undefined ? undefined : typeof o.mode === 'number' ? o.mode : parseInt(str(o.mode, `${at}.mode`)!, 8);
    const file = { Name: str(o.target, `${at}.target`) ?? source, UID: str(o.uid, `${at}.uid`) ?? '0', GID: str(o.gid, `${at}.gid`) ?? '0', Mode: mode ?? 0o444 };
    return (kind === 'secrets' ? { SecretID: '', SecretName: real, File: file } : { ConfigID: '', ConfigName: real, File: file }) as never;
  });
}

function mounts(v: unknown, path: string, ctx: ServiceContext): Mount[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ComposeError(`${path}: expected a list`);
  return v.map((m, i) => {
    const at = `${path}[${i}]`;
    if (isMap(m)) {
      checkKeys(m, ['type', 'source', 'target', 'read_only'], at, ctx.warn);
      const type = (str(m.type, `${at}.type`) ?? 'volume') as Mount['Type'];
      if (!['bind', 'volume', 'tmpfs'].includes(type)) throw new ComposeError(`${at}.type: expected bind, volume or tmpfs`);
      const target = str(m.target, `${at}.target`);
      if (!target) throw new ComposeError(`${at}.target: required`);
      const src = str(m.source, `${at}.source`);
      const source = type === 'bind' && src ? resolve(ctx.dir, src) : type === 'volume' && src ? (ctx.names.volumes.get(src) ?? src) : undefined;
      return { Type: type, Target: target, ...(source ? { Source: source } : {}), ...(bool(m.read_only, `${at}.read_only`) ? { ReadOnly: true } : {}) };
    }
    const parts = str(m, at)!.split(':');
    if (parts.length === 1) return { Type: 'volume', Target: parts[0]! };
    const [src, target, opt] = parts as [string, string, string?];
    const bind = src.startsWith('/') || src.startsWith('.') || src.startsWith('~');
    return { Type: bind ? 'bind' : 'volume', Source: bind ? resolve(ctx.dir, src) : (ctx.names.volumes.get(src) ?? src), Target: target, ...(opt?.split(',').includes('ro') ? { ReadOnly: true } : {}) };
  });
}

function healthcheck(v: unknown, path: string, ctx: ServiceContext): HealthConfig | undefined {
  if (v === undefined || v === null) return undefined;
  const h = map(v, path);
  checkKeys(h, ['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable'], path, ctx.warn);
  if (bool(h.disable, `${path}.disable`)) return { Test: ['NONE'] };
  const out: HealthConfig = {};
  if (typeof h.test === 'string') out.Test = ['CMD-SHELL', h.test];
  else if (h.test !== undefined) out.Test = words(h.test, `${path}.test`);
  const set = (k: keyof HealthConfig, x: number | undefined) => x !== undefined && ((out as Record<string, unknown>)[k] = x);
  set('Interval', duration(h.interval, `${path}.interval`));
  set('Timeout', duration(h.timeout, `${path}.timeout`));
  set('Retries', int(h.retries, `${path}.retries`));
  set('StartPeriod', duration(h.start_period, `${path}.start_period`));
  set('StartInterval', duration(h.start_interval, `${path}.start_interval`));
  return out;
}

function updateConfig(v: unknown, path: string, warn: Warn, rollback: boolean): UpdateConfig | undefined {
  if (v === undefined || v === null) return undefined;
  const u = map(v, path);
  checkKeys(u, ['parallelism', 'delay', 'failure_action', 'monitor', 'max_failure_ratio', 'order'], path, warn);
  const out: UpdateConfig = {};
  const p = int(u.parallelism, `${path}.parallelism`);
  if (p !== undefined) out.Parallelism = p;
  const d = duration(u.delay, `${path}.delay`);
  if (d !== undefined) out.Delay = d;
  const fa = str(u.failure_action, `${path}.failure_action`);
  if (fa !== undefined) {
    const ok = rollback ? ['pause', 'continue'] : ['pause', 'continue', 'rollback'];
    if (!ok.includes(fa)) throw new ComposeError(`${path}.failure_action: expected one of ${ok.join(', ')}`);
    out.FailureAction = fa as UpdateConfig['FailureAction'];
  }
  const m = duration(u.monitor, `${path}.monitor`);
  if (m !== undefined) out.Monitor = m;
  if (u.max_failure_ratio !== undefined) {
    const r = Number(u.max_failure_ratio);
    if (!(r >= 0 && r <= 1)) throw new ComposeError(`${path}.max_failure_ratio: expected a number from 0 to 1`);
    out.MaxFailureRatio = r;
  }
  const o = str(u.order, `${path}.order`);
  if (o !== undefined) {
    if (o !== 'stop-first' && o !== 'start-first') throw new ComposeError(`${path}.order: expected stop-first or start-first`);
    out.Order = o;
  }
  return out;
}

function resources(v: unknown, path: string, warn: Warn): ResourceRequirements | undefined {
  if (v === undefined || v === null) return undefined;
  const r = map(v, path);
  checkKeys(r, ['limits', 'reservations'], path, warn);
  const out: ResourceRequirements = {};
  for (const [k, field] of [['limits', 'Limits'], ['reservations', 'Reservations']] as const) {
    if (r[k] === undefined) continue;
    const x = map(r[k], `${path}.${k}`);
    checkKeys(x, ['cpus', 'memory'], `${path}.${k}`, warn);
    const c = cpus(x.cpus, `${path}.${k}.cpus`);
    const m = size(x.memory, `${path}.${k}.memory`);
    out[field] = { ...(c !== undefined ? { NanoCPUs: c } : {}), ...(m !== undefined ? { MemoryBytes: m } : {}) };
  }
  return out;
}

function restartPolicy(v: unknown, path: string, warn: Warn): RestartPolicy | undefined {
  if (v === undefined || v === null) return undefined;
  const r = map(v, path);
  checkKeys(r, ['condition', 'delay', 'max_attempts', 'window'], path, warn);
  const out: RestartPolicy = {};
  const c = str(r.condition, `${path}.condition`);
  if (c !== undefined) {
    if (!['none', 'on-failure', 'any'].includes(c)) throw new ComposeError(`${path}.condition: expected none, on-failure or any`);
    out.Condition = c as RestartPolicy['Condition'];
  }
  const d = duration(r.delay, `${path}.delay`);
  if (d !== undefined) out.Delay = d;
  const m = int(r.max_attempts, `${path}.max_attempts`);
  if (m !== undefined) out.MaxAttempts = m;
  const w = duration(r.window, `${path}.window`);
  if (w !== undefined) out.Window = w;
  return out;
}

function mode(deploy: Tree, path: string): ServiceMode {
  const m = str(deploy.mode, `${path}.mode`) ?? 'replicated';
  const replicas = int(deploy.replicas, `${path}.replicas`);
  if (m === 'replicated') return { Replicated: { Replicas: replicas ?? 1 } };
  if (m === 'global') return { Global: {} };
  if (m === 'replicated-job') return { ReplicatedJob: { TotalCompletions: replicas ?? 1 } };
  if (m === 'global-job') return { GlobalJob: {} };
  throw new ComposeError(`${path}.mode: expected replicated, global, replicated-job or global-job, got "${m}"`);
}

/** The runtime part of the task template: container (default), process or vm. */
function runtimeSpec(svc: Tree, path: string, env: string[], ctx: ServiceContext): TaskSpec {
  const runtime = str(svc['x-shoal-runtime'], `${path}.x-shoal-runtime`) ?? 'container';
  const entrypoint = words(svc.entrypoint, `${path}.entrypoint`);
  const command = words(svc.command, `${path}.command`);
  const dir = str(svc.working_dir, `${path}.working_dir`);
  const user = str(svc.user, `${path}.user`);
  const grace = duration(svc.stop_grace_period, `${path}.stop_grace_period`);
  const signal = str(svc.stop_signal, `${path}.stop_signal`);
  const hc = healthcheck(svc.healthcheck, `${path}.healthcheck`, ctx);
  const common = { ...(env.length ? { Env: env } : {}), ...(dir ? { Dir: dir } : {}), ...(user ? { User: user } : {}), ...(grace !== undefined ? { StopGracePeriod: grace } : {}), ...(signal ? { StopSignal: signal } : {}) };
  const notFor = (keys: string[]) => keys.forEach((k) => svc[k] !== undefined && ctx.warn(`${path}.${k}`, `does not apply to x-shoal-runtime: ${runtime}`));
  if (runtime === 'container') {
    const image = str(svc.image, `${path}.image`);
    if (!image) throw new ComposeError(`${path}.image: required for a container service (or set x-shoal-runtime: process)`);
    const m = mounts(svc.volumes, `${path}.volumes`, ctx);
    const hostname = str(svc.hostname, `${path}.hostname`);
    const init = bool(svc.init, `${path}.init`);
    return {
      Runtime: 'container',
      ContainerSpec: {
        Image: image, ...(entrypoint ? { Command: entrypoint } : {}), ...(command ? { Args: command } : {}), ...common,
        Labels: { ...labels(svc.labels, `${path}.labels`), [NAMESPACE_LABEL]: ctx.names.namespace },
        ...(hostname ? { Hostname: hostname } : {}), ...(init !== undefined ? { Init: init } : {}), ...(m.length ? { Mounts: m } : {}), ...(hc ? { Healthcheck: hc } : {}),
      },
    };
  }
  if (runtime === 'process') {
    const argv = [...(entrypoint ?? []), ...(command ?? [])];
    if (!argv.length) throw new ComposeError(`${path}: a process service needs command (or entrypoint): the program and its arguments`);
    notFor(['image', 'volumes', 'hostname', 'init', 'labels']);
    return { Runtime: 'process', ProcessSpec: { Command: argv, ...common, ...(hc ? { Healthcheck: hc } : {}) } };
  }
  if (runtime === 'vm') {
    const vm = map(svc['x-shoal-vm'], `${path}.x-shoal-vm`);
    checkKeys(vm, ['kernel', 'initrd', 'disk', 'cmdline'], `${path}.x-shoal-vm`, ctx.warn);
    const file = (k: string) => {
      const f = str(vm[k], `${path}.x-shoal-vm.${k}`);
      return f === undefined ? undefined : k === 'cmdline' ? f : resolve(ctx.dir, f);
    };
    const spec = Object.fromEntries(([['kernel', 'Kernel'], ['initrd', 'Initrd'], ['disk', 'Disk'], ['cmdline', 'Cmdline']] as const).flatMap(([k, f]) => (file(k) === undefined ? [] : [[f, file(k)]])));
    if (!spec.Kernel && !spec.Disk) throw new ComposeError(`${path}.x-shoal-vm: give kernel (and optionally initrd) or disk`);
    notFor(['image', 'command', 'entrypoint', 'environment', 'env_file', 'volumes', 'working_dir', 'user', 'hostname', 'init', 'labels', 'stop_signal']);
    return { Runtime: 'vm', VMSpec: { ...spec, ...(grace !== undefined ? { StopGracePeriod: grace } : {}), ...(hc ? { Healthcheck: hc } : {}) } };
  }
  throw new ComposeError(`${path}.x-shoal-runtime: expected container, process or vm, got "${runtime}"`);
}

export function convertService(name: string, v: unknown, ctx: ServiceContext): ServiceSpec {
  const path = `services.${name}`;
  const svc = map(v, path);
  checkKeys(svc, SERVICE_KEYS, path, ctx.warn);
  const deploy = map(svc.deploy, `${path}.deploy`);
  checkKeys(deploy, DEPLOY_KEYS, `${path}.deploy`, ctx.warn);
  const tt = runtimeSpec(svc, path, environment(svc, path, ctx), ctx);
  const holder = (tt.ContainerSpec ?? tt.ProcessSpec ?? tt.VMSpec)!;
  const secrets = fileRefs('secrets', svc, path, ctx);
  if (secrets.length) holder.Secrets = secrets;
  const configs = fileRefs('configs', svc, path, ctx);
  if (configs.length) holder.Configs = configs;
  const res = resources(deploy.resources, `${path}.deploy.resources`, ctx.warn);
  if (res) tt.Resources = res;
  const restart = restartPolicy(deploy.restart_policy, `${path}.deploy.restart_policy`, ctx.warn);
  if (restart) tt.RestartPolicy = restart;
  const placement = map(deploy.placement, `${path}.deploy.placement`);
  checkKeys(placement, ['constraints'], `${path}.deploy.placement`, ctx.warn);
  const constraints = words(placement.constraints, `${path}.deploy.placement.constraints`);
  if (typeof placement.constraints === 'string') throw new ComposeError(`${path}.deploy.placement.constraints: expected a list`);
  if (constraints?.length) tt.Placement = { Constraints: constraints };
  tt.Networks = networks(svc, path, ctx);
  const image = str(svc.image, `${path}.image`);
  const spec: ServiceSpec = {
    Name: `${ctx.names.namespace}_${name}`,
    Labels: { ...labels(deploy.labels, `${path}.deploy.labels`), [NAMESPACE_LABEL]: ctx.names.namespace, ...(image && tt.ContainerSpec ? { [IMAGE_LABEL]: image } : {}) },
    TaskTemplate: tt,
    Mode: mode(deploy, `${path}.deploy`),
  };
  const u = updateConfig(deploy.update_config, `${path}.deploy.update_config`, ctx.warn, false);
  if (u) spec.UpdateConfig = u;
  const r = updateConfig(deploy.rollback_config, `${path}.deploy.rollback_config`, ctx.warn, true);
  if (r) spec.RollbackConfig = r;
  const p = ports(svc.ports, `${path}.ports`);
  const endpointMode = str(deploy.endpoint_mode, `${path}.deploy.endpoint_mode`);
  if (endpointMode !== undefined && endpointMode !== 'vip' && endpointMode !== 'dnsrr') throw new ComposeError(`${path}.deploy.endpoint_mode: expected vip or dnsrr`);
  if (p.length || endpointMode) spec.EndpointSpec = { Mode: (endpointMode ?? 'vip') as 'vip' | 'dnsrr', ...(p.length ? { Ports: p } : {}) };
  return spec;
}
