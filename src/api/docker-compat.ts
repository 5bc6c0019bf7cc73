/**
 * What it takes for the docker CLI to work with services that do not run containers. The docker CLI
 * reads every service and task through Go structs that know only `ContainerSpec`: it dereferences it
 * (a nil one panics `service ps`, `service inspect --pretty`, `service ls`'s IMAGE), and an update
 * sends back what it read, without our `ProcessSpec`/`MockSpec`. So, for requests whose User-Agent is
 * the docker CLI only:
 *  - answers carry a display-only `ContainerSpec {Image: "process: /bin/sleep", Args, Env, …}` and
 *    no `Runtime`;
 *  - that ContainerSpec coming back in an update is mapped onto the ProcessSpec (Args, Env, Dir, User,
 *    StopGracePeriod), and a ContainerSpec beside a non-container `Runtime` is dropped;
 * and for every client, an update that leaves out the runtime's own spec keeps the current one.
 */
import type { Context } from 'hono';
import { InvalidArgumentError } from '../lib/errors.ts';
import { type ContainerSpec, type ProcessSpec, refHolder, runtimeOf, type Service, type Task, type TaskSpec } from '../types/index.ts';

export function isDockerCli(c: Context): boolean {
  return (c.req.header('user-agent') ?? '').startsWith('Docker-Client/');
}

export function displayImage(tt: TaskSpec): string {
  const runtime = runtimeOf(tt);
  const cmd = tt.ProcessSpec?.Command?.[0] ?? tt.VMSpec?.Kernel ?? tt.VMSpec?.Disk ?? '';
  return `${runtime}${cmd ? `: ${cmd}` : ''}`.slice(0, 200);
}

/**
 * The docker CLI's view: no `Runtime` (its client refuses a ContainerSpec beside another runtime),
 * a ContainerSpec whose Image names the runtime and program and whose Args/Env/Dir/User mirror the
 * process, so that `docker service update --env-add/--args` round-trips.
 */
function withDisplaySpec(tt: TaskSpec): TaskSpec {
  if (tt.ContainerSpec || runtimeOf(tt) === 'container') return tt;
  const { Runtime: _hidden, ...rest } = tt;
  const ps = tt.ProcessSpec;
  const cs: ContainerSpec = { Image: displayImage(tt) };
  if (ps) {
    if (ps.Command.length > 1) cs.Args = ps.Command.slice(1);
    if (ps.Env) cs.Env = ps.Env;
    if (ps.Dir) cs.Dir = ps.Dir;
    if (ps.User) cs.User = ps.User;
    if (ps.StopGracePeriod !== undefined) cs.StopGracePeriod = ps.StopGracePeriod;
    if (ps.Secrets) cs.Secrets = ps.Secrets;
    if (ps.Configs) cs.Configs = ps.Configs;
  } else {
    // Other runtimes (a VM, a plugin's) show their references too, so --secret-add/-rm round-trip.
    const h = refHolder(tt);
    if (h?.Secrets) cs.Secrets = h.Secrets;
    if (h?.Configs) cs.Configs = h.Configs;
  }
  return { ...rest, ContainerSpec: cs };
}

export function presentService<S extends Service>(c: Context, s: S): S {
  if (!isDockerCli(c)) return s;
  return {
    ...s,
    Spec: { ...s.Spec, TaskTemplate: withDisplaySpec(s.Spec.TaskTemplate) },
    ...(s.PreviousSpec ? { PreviousSpec: { ...s.PreviousSpec, TaskTemplate: withDisplaySpec(s.PreviousSpec.TaskTemplate) } } : {}),
  };
}

export function presentTask(c: Context, t: Task): Task {
  return isDockerCli(c) ? { ...t, Spec: withDisplaySpec(t.Spec) } : t;
}

const OWN_SPECS = ['ProcessSpec', 'VMSpec', 'MockSpec', 'PluginSpec'] as const;

/** Mutates `body` (parsed JSON, not yet validated) before validation. */
export function adaptServiceBody(c: Context, body: unknown, current?: Service): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const tt = (body as { TaskTemplate?: unknown }).TaskTemplate as Record<string, unknown> | undefined;
  if (!tt || typeof tt !== 'object' || Array.isArray(tt)) return body;
  if (isDockerCli(c)) {
    const cur = current?.Spec.TaskTemplate;
    const cs = tt.ContainerSpec as Partial<ContainerSpec> | undefined;
    if (typeof tt.Runtime === 'string' && tt.Runtime !== 'container') delete tt.ContainerSpec;
    else if (cur && runtimeOf(cur) !== 'container' && cs && typeof cs === 'object' && tt.Runtime === undefined) {
      // Our own display spec coming back (see withDisplaySpec): map it onto the real one.
      if (cs.Image !== displayImage(cur)) {
        throw new InvalidArgumentError(`TaskTemplate.ContainerSpec.Image: this service runs runtime "${runtimeOf(cur)}", not an image; change its program with "shoal service update --command"`);
      }
      tt.Runtime = runtimeOf(cur);
      if (cur.ProcessSpec) {
        const ps: ProcessSpec = { ...cur.ProcessSpec, Command: [cur.ProcessSpec.Command[0]!, ...(Array.isArray(cs.Args) ? cs.Args : [])] };
        const mirrored = [['Env', cs.Env], ['Dir', cs.Dir], ['User', cs.User], ['StopGracePeriod', cs.StopGracePeriod], ['Secrets', cs.Secrets], ['Configs', cs.Configs]] as const;
        for (const [k, v] of mirrored) {
          if (v === undefined || (Array.isArray(v) && v.length === 0) || v === '') delete (ps as unknown as Record<string, unknown>)[k];
          else (ps as unknown as Record<string, unknown>)[k] = v;
        }
        tt.ProcessSpec = ps;
      } else {
        const own = structuredClone(cur);
        const h = refHolder(own);
        if (h) {
          for (const [k, v] of [['Secrets', cs.Secrets], ['Configs', cs.Configs]] as const) {
            if (Array.isArray(v) && v.length) (h as Record<string, unknown>)[k] = v;
            else delete h[k];
          }
          for (const k of OWN_SPECS) if (own[k] !== undefined) tt[k] = own[k];
        }
      }
      delete tt.ContainerSpec;
    }
  }
  if (current) {
    const cur = current.Spec.TaskTemplate;
    const runtime = typeof tt.Runtime === 'string' ? tt.Runtime : tt.ContainerSpec ? 'container' : 'process';
    if (runtime === runtimeOf(cur)) for (const k of OWN_SPECS) if (tt[k] === undefined && cur[k] !== undefined) tt[k] = structuredClone(cur[k]);
  }
  return body;
}
