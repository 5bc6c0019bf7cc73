/**
 * Job modes (Docker's `replicated-job` and `global-job`): which services are jobs, and their numbers
 * with the defaults applied. Shared by the jobs stage, the API, the reaper and the CLI.
 */
import type { Service, ServiceMode } from '../../../types/index.ts';

export type JobKind = 'replicated-job' | 'global-job';

export function jobKind(mode: ServiceMode | undefined): JobKind | null {
  if (mode?.ReplicatedJob) return 'replicated-job';
  if (mode?.GlobalJob) return 'global-job';
  return null;
}

export function isJob(s: Pick<Service, 'Spec'>): boolean {
  return jobKind(s.Spec.Mode) !== null;
}

/** The iteration a job's tasks must carry to count (0 before the API has set one). */
export function jobIteration(s: Pick<Service, 'JobStatus'>): number {
  return s.JobStatus?.JobIteration?.Index ?? 0;
}

/** A replicated job's numbers: `TotalCompletions` defaults to `MaxConcurrent`, which defaults to 1. */
export function replicatedJobOf(mode: ServiceMode | undefined): { maxConcurrent: number; totalCompletions: number } {
  const rj = mode?.ReplicatedJob ?? {};
  const maxConcurrent = Math.max(0, Math.floor(rj.MaxConcurrent ?? 1));
  const totalCompletions = Math.max(0, Math.floor(rj.TotalCompletions ?? maxConcurrent));
  return { maxConcurrent, totalCompletions };
}
