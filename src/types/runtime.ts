import type { TaskSpec } from './objects.ts';

/** The runtime (executor name) a task spec asks for. */
export function runtimeOf(spec: TaskSpec): string {
  if (spec.Runtime) return spec.Runtime;
  return spec.ContainerSpec ? 'container' : 'process';
}

/** Stop grace period of a task spec in milliseconds (default 10 s, as Docker). */
export function stopGraceMs(spec: TaskSpec): number {
  const ns = spec.ProcessSpec?.StopGracePeriod ?? spec.ContainerSpec?.StopGracePeriod ?? spec.VMSpec?.StopGracePeriod
    ?? spec.MockSpec?.StopGracePeriod ?? pluginGraceNs(spec);
  return ns === undefined ? 10_000 : Math.floor(ns / 1_000_000);
}

/** A plugin's own spec (`PluginSpec[runtime]`) may carry `StopGracePeriod` in ns, as the built-ins do. */
function pluginGraceNs(spec: TaskSpec): number | undefined {
  const own = spec.PluginSpec?.[runtimeOf(spec)] as { StopGracePeriod?: unknown } | undefined;
  const ns = own && typeof own === 'object' ? own.StopGracePeriod : undefined;
  return typeof ns === 'number' && Number.isFinite(ns) && ns >= 0 ? ns : undefined;
}
