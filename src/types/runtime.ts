import type { TaskSpec } from './objects.ts';

/** The runtime (executor name) a task spec asks for. */
export function runtimeOf(spec: TaskSpec): string {
  if (spec.Runtime) return spec.Runtime;
  return spec.ContainerSpec ? 'container' : 'process';
}

/** Stop grace period of a task spec in milliseconds (default 10 s, as Docker). */
export function stopGraceMs(spec: TaskSpec): number {
  const ns = spec.ProcessSpec?.StopGracePeriod ?? spec.ContainerSpec?.StopGracePeriod ?? spec.VMSpec?.StopGracePeriod
    ?? spec.MockSpec?.StopGracePeriod;
  return ns === undefined ? 10_000 : Math.floor(ns / 1_000_000);
}
