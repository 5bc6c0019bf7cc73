/**
 * Service modes in a request, and what makes a job a job: exactly one mode; a job has no rolling
 * update (updating a job runs it again); a service cannot become a job or stop being one. And the
 * `JobStatus` a job's create or update starts a new iteration with.
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import { jobIteration, jobKind, replicatedJobOf } from '../manager/orchestrator/jobs/mode.ts';
import type { JobStatus, Service, ServiceMode, ServiceSpec, Task } from '../types/index.ts';

const MODES = ['Replicated', 'Global', 'ReplicatedJob', 'GlobalJob'] as const;

/** The mode the store keeps, with defaults (replicated, 1 replica; a job's TotalCompletions = MaxConcurrent). */
export function normalizeMode(mode: ServiceMode | undefined, spec: Pick<ServiceSpec, 'UpdateConfig' | 'RollbackConfig'>): ServiceMode {
  const given = MODES.filter((m) => mode?.[m] !== undefined);
  if (given.length > 1) throw new InvalidArgumentError(`Mode: give only one of ${MODES.join(', ')} (got ${given.join(' and ')})`);
  if (!mode || given.length === 0) return { Replicated: { Replicas: 1 } };
  if (mode.Global) return { Global: {} };
  if (mode.Replicated) return { Replicated: { Replicas: mode.Replicated.Replicas ?? 1 } };
  // A job runs to completion once per iteration: an update re-runs it, there is nothing to roll.
  for (const k of ['UpdateConfig', 'RollbackConfig'] as const) {
    if (spec[k] !== undefined) throw new InvalidArgumentError(`${k}: a job (Mode.${given[0]}) has no rolling update; leave ${k} out (updating a job runs it again)`);
  }
  if (mode.GlobalJob) return { GlobalJob: {} };
  const rj = mode.ReplicatedJob!;
  const maxConcurrent = rj.MaxConcurrent ?? 1;
  return { ReplicatedJob: { MaxConcurrent: maxConcurrent, TotalCompletions: rj.TotalCompletions ?? maxConcurrent } };
}

/** An update may not turn a service into a job or a job into a service that keeps running. */
export function checkModeChange(cur: ServiceSpec, next: ServiceSpec): void {
  if (!jobKind(cur.Mode) === !jobKind(next.Mode)) return;
  throw new InvalidArgumentError(`Mode: a service cannot change between a job mode and replicated/global (this one is ${modeName(cur.Mode)}, the update asks for ${modeName(next.Mode)}); remove it and create it again`);
}

/**
 * A new iteration of a job: its tasks carry `Index`. On create 0 (the service has no version yet);
 * on update the version the update replaces, which only grows, as Docker's JobIteration.
 */
export function nextJobStatus(spec: ServiceSpec, cur: Service | undefined, nowIso: string): JobStatus | undefined {
  if (!jobKind(spec.Mode)) return undefined;
  return { JobIteration: { Index: cur ? cur.Version.Index : 0 }, LastExecution: nowIso };
}

export function modeName(mode: ServiceMode | undefined): string {
  return jobKind(mode) ?? (mode?.Global ? 'global' : 'replicated');
}

/**
 * Docker's ServiceStatus for a job, over its current iteration: tasks running, tasks wanted at once
 * (a replicated job: MaxConcurrent, or fewer near the end; a global job: one per node it runs on),
 * tasks completed. `service ls` shows them as `2/2 (3/5 completed)`.
 */
export function jobServiceStatus(svc: Service, all: readonly Task[]): { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } {
  const iteration = jobIteration(svc);
  const tasks = all.filter((t) => (t.JobIteration?.Index ?? -1) === iteration);
  const completed = tasks.filter((t) => t.Status.State === 'complete').length;
  const running = tasks.filter((t) => t.Status.State === 'running' && t.DesiredState === 'running').length;
  let desired: number;
  if (svc.Spec.Mode?.ReplicatedJob) {
    const { maxConcurrent, totalCompletions } = replicatedJobOf(svc.Spec.Mode);
    desired = Math.max(0, Math.min(maxConcurrent, totalCompletions - completed));
  } else {
    desired = new Set(tasks.filter((t) => t.Status.State !== 'complete').map((t) => t.NodeID || t.ID)).size;
  }
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}
