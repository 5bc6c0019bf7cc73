/**
 * What it takes for the docker CLI to work with services that do not run containers. The docker CLI
 * reads every service and task through Go structs that know only `ContainerSpec`: it dereferences it
 * (a nil one panics `service ps`, `service inspect --pretty`, `service ls`'s IMAGE), and an update
 * sends back what it read, without our `ProcessSpec`/`MockSpec`. So, for requests whose User-Agent is
 * the docker CLI only:
 *  - answers carry a display-only `ContainerSpec {Image: "process: /bin/sleep 60"}`;
 *  - bodies of services whose `Runtime` is not `container` have that ContainerSpec dropped;
 * and for every client, an update that leaves out the runtime's own spec keeps the current one.
 */
import type { Context } from 'hono';
import { runtimeOf, type Service, type Task, type TaskSpec } from '../types/index.ts';

export function isDockerCli(c: Context): boolean {
  return (c.req.header('user-agent') ?? '').startsWith('Docker-Client/');
}

function displayImage(tt: TaskSpec): string {
  const runtime = runtimeOf(tt);
  const cmd = tt.ProcessSpec?.Command?.join(' ') ?? (tt.MockSpec ? 'mock' : '');
  return `${runtime}: ${cmd}`.trim().slice(0, 200);
}

function withDisplaySpec(tt: TaskSpec): TaskSpec {
  if (tt.ContainerSpec || runtimeOf(tt) === 'container') return tt;
  return { ...tt, ContainerSpec: { Image: displayImage(tt) } };
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

const OWN_SPECS = ['ProcessSpec', 'MockSpec', 'PluginSpec'] as const;

/** Mutates `body` (parsed JSON, not yet validated) before validation. */
export function adaptServiceBody(c: Context, body: unknown, current?: Service): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const tt = (body as { TaskTemplate?: unknown }).TaskTemplate as Record<string, unknown> | undefined;
  if (!tt || typeof tt !== 'object' || Array.isArray(tt)) return body;
  const runtime = typeof tt.Runtime === 'string' ? tt.Runtime : undefined;
  if (isDockerCli(c) && runtime && runtime !== 'container') delete tt.ContainerSpec;
  if (current) {
    const cur = current.Spec.TaskTemplate;
    const same = (runtime ?? (tt.ContainerSpec ? 'container' : 'process')) === runtimeOf(cur);
    if (same) for (const k of OWN_SPECS) if (tt[k] === undefined && cur[k] !== undefined) tt[k] = structuredClone(cur[k]);
  }
  return body;
}
