/**
 * `service create` / `service update` options → ServiceSpec. Pure functions over parsed arguments,
 * so that every flag is unit-tested without a daemon.
 */
import type { PortConfig, ResourceRequirements, RestartPolicy, ServiceSpec, TaskSpec } from '../types/index.ts';
import { type OptionDef, type Parsed, UsageError } from './args.ts';
import {
  applyContainerFlags, applyHealthcheck, applyPluginOptUpdate, applyVMFlags, CONTAINER_OPTIONS, CONTAINER_UPDATE_OPTIONS, PLUGIN_OPTIONS, PLUGIN_UPDATE_OPTIONS,
  parseIsolation, pluginOpts, PROCESS_OPTIONS, refuseRuntimeFlags, VM_OPTIONS, VM_UPDATE_OPTIONS, vmSpecOf,
} from './runtime-opts.ts';
import { applyModeUpdate, MAX_CONCURRENT_OPTION, modeFromFlags } from './job-opts.ts';
import { applyNetworkUpdate, type KnownNetwork, NETWORK_OPTION, NETWORK_UPDATE_OPTIONS, networksOf } from './network-opts.ts';
import { applyUpdateConfigFlags, UPDATE_CONFIG_OPTIONS } from './update-opts.ts';
import { applyFileRefs, applyFileRefsUpdate, SECRET_OPTIONS, SECRET_UPDATE_OPTIONS } from './secret-opts.ts';
import {
  checkConstraint, invalid, parseChoice, parseCount, parseCpus, parseDuration, parseEnv, parseKeyValue, parsePublish, parseSize, splitWords,
} from './units.ts';

/** `--detach`, `--wait-timeout`, `--quiet`: how create, update, scale and rollback wait for `what`. */
export function waitOptions(what: string): OptionDef[] {
  return [
    { long: 'detach', short: 'd', kind: 'bool', help: `exit at once instead of waiting for ${what}` },
    { long: 'wait-timeout', kind: 'string', value: 'DURATION', help: 'how long to wait for convergence (default 60s)' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'suppress progress output' },
  ];
}

const common: OptionDef[] = [
  { long: 'workdir', short: 'w', kind: 'string', value: 'DIR', help: 'working directory of the program' },
  { long: 'user', short: 'u', kind: 'string', value: 'USER', help: 'user (name or uid[:gid]) to run as' },
  { long: 'reserve-cpu', kind: 'string', value: 'CPUS', help: 'reserve CPUs (e.g. 0.5)' },
  { long: 'reserve-memory', kind: 'string', value: 'SIZE', help: 'reserve memory (e.g. 64M)' },
  { long: 'limit-cpu', kind: 'string', value: 'CPUS', help: 'limit CPUs' },
  { long: 'limit-memory', kind: 'string', value: 'SIZE', help: 'limit memory' },
  { long: 'restart-condition', kind: 'string', value: 'none|on-failure|any', help: 'restart when the task exits (default any)' },
  { long: 'restart-delay', kind: 'string', value: 'DURATION', help: 'delay between restart attempts (default 5s)' },
  { long: 'restart-max-attempts', kind: 'string', value: 'N', help: 'maximum restarts before giving up (0: unlimited)' },
  { long: 'restart-window', kind: 'string', value: 'DURATION', help: 'window used to evaluate the restart policy' },
  { long: 'stop-grace-period', kind: 'string', value: 'DURATION', help: 'time to wait before force-killing (default 10s)' },
  { long: 'mock-run-for', kind: 'string', value: 'DURATION', help: '--runtime mock: run for this long, then exit' },
  { long: 'mock-exit-code', kind: 'string', value: 'N', help: '--runtime mock: exit code when done' },
  { long: 'mock-start-error', kind: 'string', value: 'MESSAGE', help: '--runtime mock: fail to start with this message' },
  ...waitOptions('the tasks to converge'),
  ...UPDATE_CONFIG_OPTIONS,
];

export const CREATE_OPTIONS: OptionDef[] = [
  { long: 'name', kind: 'string', value: 'NAME', help: 'service name' },
  { long: 'replicas', kind: 'string', value: 'N', help: 'number of tasks (default 1); replicated-job: completions' },
  { long: 'mode', kind: 'string', value: 'replicated|global|replicated-job|global-job', help: 'service mode (default replicated)' },
  MAX_CONCURRENT_OPTION,
  { long: 'runtime', kind: 'string', value: 'RUNTIME', help: 'process (default), container, vm, mock, or a plugin\'s runtime' },
  { long: 'env', short: 'e', kind: 'list', value: 'KEY=VALUE', help: 'set an environment variable (repeatable)' },
  { long: 'constraint', kind: 'list', value: 'EXPR', help: 'placement constraint, e.g. node.labels.zone==eu (repeatable)' },
  { long: 'label', kind: 'list', value: 'KEY=VALUE', help: 'service label (repeatable)' },
  { long: 'publish', short: 'p', kind: 'list', value: 'PORT', help: 'publish a port: 8080:80[/udp] or published=8080,target=80 (repeatable)' },
  NETWORK_OPTION,
  ...SECRET_OPTIONS,
  ...common,
  ...PROCESS_OPTIONS,
  ...CONTAINER_OPTIONS,
  ...VM_OPTIONS,
  ...PLUGIN_OPTIONS,
];

export const UPDATE_OPTIONS: OptionDef[] = [
  { long: 'replicas', kind: 'string', value: 'N', help: 'number of tasks; replicated-job: completions' },
  MAX_CONCURRENT_OPTION,
  { long: 'env-add', kind: 'list', value: 'KEY=VALUE', help: 'add or change an environment variable' },
  { long: 'env-rm', kind: 'list', value: 'KEY', help: 'remove an environment variable' },
  { long: 'label-add', kind: 'list', value: 'KEY=VALUE', help: 'add or change a service label' },
  { long: 'label-rm', kind: 'list', value: 'KEY', help: 'remove a service label' },
  { long: 'constraint-add', kind: 'list', value: 'EXPR', help: 'add a placement constraint' },
  { long: 'constraint-rm', kind: 'list', value: 'EXPR', help: 'remove a placement constraint' },
  { long: 'publish-add', kind: 'list', value: 'PORT', help: 'publish a port' },
  { long: 'publish-rm', kind: 'list', value: 'TARGET', help: 'stop publishing the port with this target' },
  { long: 'image', kind: 'string', value: 'IMAGE', help: '--runtime container: the image' },
  { long: 'command', kind: 'string', value: 'PROGRAM', help: '--runtime process or a plugin\'s: the program' },
  { long: 'args', kind: 'string', value: '"ARG …"', help: 'the arguments (process, plugin: after the program; container: the command)' },
  { long: 'force', kind: 'bool', help: 'replace the tasks even if nothing changed' },
  ...NETWORK_UPDATE_OPTIONS,
  ...SECRET_UPDATE_OPTIONS,
  ...common,
  { ...PROCESS_OPTIONS[0]!, help: '--runtime process: namespaces of its own, any of pid,mount,network ("" removes them)' },
  ...CONTAINER_UPDATE_OPTIONS,
  ...VM_UPDATE_OPTIONS,
  ...PLUGIN_UPDATE_OPTIONS,
];

const num = (p: Parsed, flag: string, parse: (flag: string, raw: string) => number) => {
  const raw = p.str(flag);
  return raw === undefined ? undefined : parse(flag, raw);
};

function applyResources(p: Parsed, r: ResourceRequirements | undefined): ResourceRequirements | undefined {
  const out: ResourceRequirements = { Limits: { ...r?.Limits }, Reservations: { ...r?.Reservations } };
  const set = (k: 'Limits' | 'Reservations', f: 'NanoCPUs' | 'MemoryBytes', v: number | undefined) => v !== undefined && (out[k]![f] = v);
  set('Reservations', 'NanoCPUs', num(p, 'reserve-cpu', parseCpus));
  set('Reservations', 'MemoryBytes', num(p, 'reserve-memory', parseSize));
  set('Limits', 'NanoCPUs', num(p, 'limit-cpu', parseCpus));
  set('Limits', 'MemoryBytes', num(p, 'limit-memory', parseSize));
  if (!Object.keys(out.Limits!).length) delete out.Limits;
  if (!Object.keys(out.Reservations!).length) delete out.Reservations;
  return out.Limits || out.Reservations ? out : undefined;
}

function applyRestart(p: Parsed, r: RestartPolicy | undefined): RestartPolicy | undefined {
  const out: RestartPolicy = { ...r };
  const cond = p.str('restart-condition');
  if (cond !== undefined) out.Condition = parseChoice('restart-condition', cond, ['none', 'on-failure', 'any'] as const);
  const delay = num(p, 'restart-delay', parseDuration);
  if (delay !== undefined) out.Delay = delay;
  const max = num(p, 'restart-max-attempts', (f, v) => parseCount(f, v));
  if (max !== undefined) out.MaxAttempts = max;
  const win = num(p, 'restart-window', parseDuration);
  if (win !== undefined) out.Window = win;
  return Object.keys(out).length ? out : undefined;
}

function mockSpec(p: Parsed, base: TaskSpec['MockSpec'] = {}): NonNullable<TaskSpec['MockSpec']> {
  const m = { ...base };
  const runFor = num(p, 'mock-run-for', parseDuration);
  if (runFor !== undefined) m.RunFor = runFor;
  const code = num(p, 'mock-exit-code', (f, v) => parseCount(f, v, 255));
  if (code !== undefined) m.ExitCode = code;
  const err = p.str('mock-start-error');
  if (err !== undefined) m.StartError = err;
  return m;
}

function refuseMockFlags(p: Parsed, runtime: string): void {
  for (const f of ['mock-run-for', 'mock-exit-code', 'mock-start-error']) {
    if (p.has(f)) throw new UsageError(`--${f} only applies to --runtime mock (this service's runtime is ${runtime})`);
  }
}

function envOf(p: Parsed, flag: string, env: Record<string, string | undefined>): string[] {
  return p.list(flag).map((e) => parseEnv(flag, e, env)).filter((e): e is string => e !== null);
}

function labelsOf(p: Parsed, flag: string): Record<string, string> {
  return Object.fromEntries(p.list(flag).map((l) => parseKeyValue(flag, l)));
}

/** `service create [OPTIONS] PROGRAM [ARG…]` → the spec to send. */
export function buildServiceSpec(p: Parsed, env: Record<string, string | undefined> = process.env): ServiceSpec {
  const runtime = p.str('runtime') ?? 'process';
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(runtime)) throw invalid('runtime', runtime, 'expected a runtime name such as process, container or mock');
  const mode = modeFromFlags(p);
  const args = p.positionals;
  const workdir = p.str('workdir');
  const user = p.str('user');
  const grace = num(p, 'stop-grace-period', parseDuration);
  const envs = envOf(p, 'env', env);
  const tt: TaskSpec = { Runtime: runtime };
  if (runtime === 'process') {
    if (args.length === 0) throw new UsageError('"shoal service create" needs a PROGRAM to run: shoal service create [OPTIONS] PROGRAM [ARG…] (or --runtime mock)');
    tt.ProcessSpec = { Command: [...args], ...(envs.length ? { Env: envs } : {}), ...(workdir ? { Dir: workdir } : {}), ...(user ? { User: user } : {}), ...(grace !== undefined ? { StopGracePeriod: grace } : {}) };
    const hc = applyHealthcheck(p, undefined);
    if (hc) tt.ProcessSpec.Healthcheck = hc;
    const iso = p.has('isolation') ? parseIsolation(p.str('isolation')!) : undefined;
    if (iso) tt.ProcessSpec.Isolation = iso;
  } else if (runtime === 'container') {
    if (args.length === 0) throw new UsageError('"shoal service create --runtime container" needs an IMAGE: shoal service create --runtime container [OPTIONS] IMAGE [CMD…]');
    // Docker's model: what follows IMAGE replaces the image's CMD (Args); --entrypoint its ENTRYPOINT.
    tt.ContainerSpec = applyContainerFlags(p, { Image: args[0]!, ...(args.length > 1 ? { Args: args.slice(1) } : {}), ...(envs.length ? { Env: envs } : {}), ...(workdir ? { Dir: workdir } : {}), ...(user ? { User: user } : {}), ...(grace !== undefined ? { StopGracePeriod: grace } : {}) });
  } else if (runtime === 'vm') {
    if (args.length) throw new UsageError(`--runtime vm takes no PROGRAM: the guest runs what its kernel, initramfs or disk boots (unexpected "${args[0]}"; use --cmdline for kernel arguments)`);
    for (const f of ['env', 'workdir', 'user']) if (p.has(f)) throw new UsageError(`--${f} does not apply to --runtime vm`);
    tt.VMSpec = vmSpecOf(p, grace);
  } else if (runtime === 'mock') {
    if (args.length) throw new UsageError(`--runtime mock runs no program: unexpected "${args[0]}"`);
    for (const f of ['env', 'workdir', 'user']) if (p.has(f)) throw new UsageError(`--${f} does not apply to --runtime mock`);
    tt.MockSpec = mockSpec(p);
    if (grace !== undefined) tt.MockSpec.StopGracePeriod = grace;
  } else {
    // A plugin's runtime: its own spec, from PROGRAM [ARG…], --env, --stop-grace-period and --plugin-opt.
    const own = { ...(args.length ? { Command: [...args] } : {}), ...(envs.length ? { Env: envs } : {}), ...(grace !== undefined ? { StopGracePeriod: grace } : {}), ...pluginOpts(p) };
    if (Object.keys(own).length) tt.PluginSpec = { [runtime]: own };
  }
  if (runtime !== 'mock') refuseMockFlags(p, runtime);
  refuseRuntimeFlags(p, runtime);
  const resources = applyResources(p, undefined);
  if (resources) tt.Resources = resources;
  const restart = applyRestart(p, undefined);
  if (restart) tt.RestartPolicy = restart;
  const constraints = p.list('constraint').map((c) => checkConstraint('constraint', c));
  if (constraints.length) tt.Placement = { Constraints: constraints };
  const networks = networksOf(p);
  if (networks) tt.Networks = networks;
  applyFileRefs(tt, p);
  const spec: ServiceSpec = {
    Name: p.str('name') ?? '',
    Labels: labelsOf(p, 'label'),
    TaskTemplate: tt,
    Mode: mode,
  };
  if (!spec.Name) delete (spec as Partial<ServiceSpec>).Name;
  const ports = p.list('publish').map((x) => parsePublish(x));
  if (ports.length) spec.EndpointSpec = { Mode: 'vip', Ports: ports };
  applyUpdateConfigFlags(p, spec);
  return spec;
}

function mergeEnv(base: string[] | undefined, add: string[], rm: string[]): string[] {
  const key = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
  const drop = new Set([...rm, ...add.map(key)]);
  return [...(base ?? []).filter((e) => !drop.has(key(e))), ...add];
}

/** `service update` flags applied to the current spec (a copy is returned). */
export function applyServiceUpdate(current: ServiceSpec, p: Parsed, env: Record<string, string | undefined> = process.env, networks: readonly KnownNetwork[] = []): ServiceSpec {
  const spec: ServiceSpec = structuredClone(current);
  const tt = spec.TaskTemplate;
  const runtime = tt.Runtime ?? (tt.ContainerSpec ? 'container' : 'process');
  spec.Mode = applyModeUpdate(spec.Mode, p);
  const envAdd = envOf(p, 'env-add', env);
  const envRm = p.list('env-rm');
  const workdir = p.str('workdir');
  const user = p.str('user');
  const grace = num(p, 'stop-grace-period', parseDuration);
  const args = p.has('args') ? splitWords('args', p.str('args')!) : undefined;
  if (runtime === 'process') {
    const ps = tt.ProcessSpec ?? { Command: [] };
    if (p.has('image')) throw new UsageError('--image only applies to --runtime container (this service runs a process: use --command/--args)');
    const program = p.str('command') ?? ps.Command[0];
    if (!program) throw new UsageError('this service has no program: give --command');
    ps.Command = [program, ...(args ?? ps.Command.slice(1))];
    if (envAdd.length || envRm.length) ps.Env = mergeEnv(ps.Env, envAdd, envRm);
    if (workdir !== undefined) ps.Dir = workdir;
    if (user !== undefined) ps.User = user;
    if (grace !== undefined) ps.StopGracePeriod = grace;
    const hc = applyHealthcheck(p, ps.Healthcheck);
    if (hc) ps.Healthcheck = hc;
    else delete ps.Healthcheck;
    if (p.has('isolation')) {
      const iso = parseIsolation(p.str('isolation')!);
      if (iso) ps.Isolation = iso;
      else delete ps.Isolation;
    }
    tt.ProcessSpec = ps;
  } else if (runtime === 'container') {
    const cs = tt.ContainerSpec ?? { Image: '' };
    if (p.has('command')) throw new UsageError('--command only applies to --runtime process (use --image/--args)');
    if (p.has('image')) cs.Image = p.str('image')!;
    if (args) cs.Args = args;
    if (envAdd.length || envRm.length) cs.Env = mergeEnv(cs.Env, envAdd, envRm);
    if (workdir !== undefined) cs.Dir = workdir;
    if (user !== undefined) cs.User = user;
    if (grace !== undefined) cs.StopGracePeriod = grace;
    tt.ContainerSpec = applyContainerFlags(p, cs, true);
  } else if (runtime === 'vm' || runtime === 'mock') {
    for (const f of ['image', 'command', 'args', 'env-add', 'env-rm', 'workdir', 'user']) {
      if (p.has(f)) throw new UsageError(`--${f} does not apply to --runtime ${runtime}`);
    }
    if (runtime === 'vm') tt.VMSpec = applyVMFlags(p, tt.VMSpec ?? {}, grace, true);
    else {
      tt.MockSpec = mockSpec(p, tt.MockSpec);
      if (grace !== undefined) tt.MockSpec.StopGracePeriod = grace;
    }
  } else {
    // A plugin's runtime: its own spec, whose Command and Env create filled from PROGRAM [ARG…] and --env.
    for (const f of ['image', 'workdir', 'user']) {
      if (p.has(f)) throw new UsageError(`--${f} does not apply to --runtime ${runtime} (a plugin's runtime: use --plugin-opt-add)`);
    }
    const cur = tt.PluginSpec?.[runtime];
    const own = applyPluginOptUpdate(p, cur && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>) : {});
    const strings = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);
    if (p.has('command') || args) {
      const command = strings(own.Command) ?? [];
      const program = p.str('command') ?? command[0];
      if (!program) throw new UsageError('this service has no program: give --command');
      own.Command = [program, ...(args ?? command.slice(1))];
    }
    if (envAdd.length || envRm.length) own.Env = mergeEnv(strings(own.Env), envAdd, envRm);
    if (grace !== undefined) own.StopGracePeriod = grace;
    // Sent even when emptied (left out, the API would keep the current one); untouched otherwise.
    const touched = ['plugin-opt-add', 'plugin-opt-rm', 'command', 'args', 'env-add', 'env-rm', 'stop-grace-period'].some((f) => p.has(f));
    if (touched) tt.PluginSpec = { ...tt.PluginSpec, [runtime]: own };
  }
  if (runtime !== 'mock') refuseMockFlags(p, runtime);
  refuseRuntimeFlags(p, runtime);
  const resources = applyResources(p, tt.Resources);
  if (resources) tt.Resources = resources;
  const restart = applyRestart(p, tt.RestartPolicy);
  if (restart) tt.RestartPolicy = restart;
  if (p.has('constraint-add') || p.has('constraint-rm')) {
    const rm = new Set(p.list('constraint-rm'));
    const kept = (tt.Placement?.Constraints ?? []).filter((c) => !rm.has(c));
    const added = p.list('constraint-add').map((c) => checkConstraint('constraint-add', c)).filter((c) => !kept.includes(c));
    tt.Placement = { ...tt.Placement, Constraints: [...kept, ...added] };
  }
  if (p.has('label-add') || p.has('label-rm')) {
    const labels = { ...spec.Labels };
    for (const k of p.list('label-rm')) delete labels[k];
    Object.assign(labels, labelsOf(p, 'label-add'));
    spec.Labels = labels;
  }
  if (p.has('publish-add') || p.has('publish-rm')) {
    const rm = new Set(p.list('publish-rm').map((t) => parsePublish(t, 'publish-rm').TargetPort));
    const added: PortConfig[] = p.list('publish-add').map((x) => parsePublish(x, 'publish-add'));
    const kept = (spec.EndpointSpec?.Ports ?? []).filter((pc) => !rm.has(pc.TargetPort) && !added.some((a) => a.TargetPort === pc.TargetPort && a.Protocol === pc.Protocol));
    spec.EndpointSpec = { Mode: spec.EndpointSpec?.Mode ?? 'vip', Ports: [...kept, ...added] };
  }
  applyNetworkUpdate(tt, p, networks);
  applyFileRefsUpdate(tt, p);
  if (p.bool('force')) tt.ForceUpdate = (tt.ForceUpdate ?? 0) + 1;
  applyUpdateConfigFlags(p, spec);
  return spec;
}
