/**
 * Progress of a job (`service create|update|scale` on a replicated-job or global-job): done when the
 * current run has completed (TotalCompletions tasks, or one on every node the job can use); hopeless
 * when the restart policy gave up on a task, since that run can then never complete.
 */
import { matchConstraints, parseConstraints } from '../manager/scheduler/constraints.ts';
import type { Node, Service, Task } from '../types/index.ts';
import { taskError } from './format.ts';
import type { Progress } from './progress-state.ts';

export function isJobService(svc: Service): boolean {
  return !!(svc.Spec.Mode?.ReplicatedJob || svc.Spec.Mode?.GlobalJob);
}

export function assessJob(svc: Service, all: readonly Task[], nodes: readonly Node[]): Progress {
  const name = svc.Spec.Name;
  const iteration = svc.JobStatus?.JobIteration?.Index ?? 0;
  const tasks = all.filter((t) => (t.JobIteration?.Index ?? -1) === iteration);
  const completed = tasks.filter((t) => t.Status.State === 'complete');
  const running = tasks.filter((t) => t.Status.State === 'running' && t.DesiredState === 'running').length;
  let want: number;
  let done: boolean;
  const rj = svc.Spec.Mode?.ReplicatedJob;
  if (rj) {
    want = rj.TotalCompletions ?? rj.MaxConcurrent ?? 1;
    done = completed.length >= want;
  } else {
    let constraints: ReturnType<typeof parseConstraints> = [];
    try {
      constraints = parseConstraints(svc.Spec.TaskTemplate.Placement?.Constraints);
    } catch {}
    const usable = nodes.filter((n) => n.Spec.Availability === 'active' && n.Status?.State === 'ready' && matchConstraints(constraints, n));
    const finished = new Set(completed.map((t) => t.NodeID));
    want = usable.length;
    done = usable.every((n) => finished.has(n.ID));
  }
  let line = `${name}: ${completed.length}/${want} complete, ${running} running`;
  if (done) return { done: true, line: `${name}: ${completed.length}/${want} complete` };
  const givenUp = tasks.find((t) => t.SlotDone);
  if (givenUp) {
    return { done: false, line, failure: `${name} cannot complete: task ${givenUp.ID.slice(0, 12)} ${givenUp.Status.State} and its restart policy gave up: ${taskError(givenUp) || givenUp.Status.Message}` };
  }
  const pending = tasks.find((t) => t.DesiredState === 'running' && t.Status.State === 'pending' && taskError(t));
  if (pending) line += ` (pending: ${taskError(pending)})`;
  return { done: false, line };
}
