/**
 * From a request body to a ServiceSpec the store keeps: schema, defaults, runtime checks,
 * constraints. Everything a user can get wrong becomes a 400 naming the field.
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import { parseConstraints } from '../manager/scheduler/constraints.ts';
import { NS_PER_S, runtimeOf, type ServiceSpec, type TaskSpec } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';
import { normalizeMode } from './job-spec.ts';
import { pluginFileRefsSchema, serviceSpecSchema, validate } from './schemas.ts';

const RUNTIME_SPEC: Record<string, keyof TaskSpec> = { container: 'ContainerSpec', process: 'ProcessSpec', vm: 'VMSpec', mock: 'MockSpec' };

/**
 * Drop empty objects and lists, nulls and `ForceUpdate: 0` from a task spec. The docker CLI sends
 * `Placement: {}`, `Resources: {Limits: {}, …}` and the like back on every update; kept, they would
 * make the spec differ from the tasks' and a mere `docker service scale` would replace every task.
 */
export function pruneEmpty(o: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(o)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) pruneEmpty(v as Record<string, unknown>);
    const empty = v === null || v === undefined || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v).length === 0);
    if (empty || (k === 'ForceUpdate' && v === 0)) delete o[k];
  }
}

export function normalizeServiceSpec(body: unknown, deps: Pick<ApiDeps, 'validateTaskSpec'>, fallbackName: () => string): ServiceSpec {
  const input = validate(serviceSpecSchema, body);
  const tt = input.TaskTemplate as TaskSpec;
  pruneEmpty(tt as Record<string, unknown>);
  const runtime = runtimeOf(tt);
  const own = RUNTIME_SPEC[runtime];
  if (own === 'MockSpec' && !tt.MockSpec) tt.MockSpec = {};
  if (own && !tt[own]) throw new InvalidArgumentError(`TaskTemplate.${own}: required for runtime "${runtime}"`);
  for (const other of Object.values(RUNTIME_SPEC)) {
    if (other !== own && tt[other] !== undefined) throw new InvalidArgumentError(`TaskTemplate.${other}: not used by runtime "${runtime}"; remove it or set TaskTemplate.Runtime`);
  }
  if (!own && !tt.PluginSpec?.[runtime] && tt.PluginSpec !== undefined && Object.keys(tt.PluginSpec).length > 0) {
    throw new InvalidArgumentError(`TaskTemplate.PluginSpec.${runtime}: required for runtime "${runtime}"`);
  }
  const pluginOwn = own ? undefined : tt.PluginSpec?.[runtime];
  if (pluginOwn && typeof pluginOwn === 'object' && !Array.isArray(pluginOwn)) {
    validate(pluginFileRefsSchema, pluginOwn, `TaskTemplate.PluginSpec.${runtime}`);
  }
  if (tt.VMSpec) {
    if (!tt.VMSpec.Kernel && !tt.VMSpec.Disk) throw new InvalidArgumentError('TaskTemplate.VMSpec: give Kernel (with an optional Initrd) or Disk');
    if (tt.VMSpec.Initrd && !tt.VMSpec.Kernel) throw new InvalidArgumentError('TaskTemplate.VMSpec.Initrd: only with Kernel');
  }
  tt.Runtime = runtime;
  tt.RestartPolicy = { Condition: 'any', Delay: 5 * NS_PER_S, MaxAttempts: 0, Window: 0, ...tt.RestartPolicy };
  const constraints = tt.Placement?.Constraints;
  if (constraints) {
    constraints.forEach((c, i) => {
      try {
        parseConstraints([c]);
      } catch (e) {
        throw new InvalidArgumentError(`TaskTemplate.Placement.Constraints[${i}]: ${(e as Error).message}`);
      }
    });
  }
  const spec: ServiceSpec = {
    ...(input as Omit<ServiceSpec, 'Name'>),
    Name: input.Name || fallbackName(),
    Labels: input.Labels ?? {},
    TaskTemplate: tt,
    Mode: normalizeMode(input.Mode, input),
  };
  // A process on the host's network listens on its target port on its host, where the mesh would
  // also listen on the published port: the same number cannot be both.
  const onHostNetwork = runtime === 'process' && !(tt.Networks?.length) && !(input.Networks?.length);
  (input.EndpointSpec?.Ports ?? []).forEach((p, i) => {
    if (onHostNetwork && p.PublishedPort && p.PublishedPort === p.TargetPort) {
      throw new InvalidArgumentError(`EndpointSpec.Ports[${i}]: published port ${p.PublishedPort} is the target port of a process task on the host's network, which the task itself listens on; publish another port (e.g. published=${p.PublishedPort === 65535 ? 65534 : p.PublishedPort + 1},target=${p.TargetPort}) or attach the service to an overlay network`);
    }
  });
  const problem = deps.validateTaskSpec(tt);
  if (problem) throw new InvalidArgumentError(problem.startsWith('TaskTemplate') ? problem : `TaskTemplate: ${problem}`);
  return spec;
}
