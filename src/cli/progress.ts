/**
 * Live progress of `service create|scale|update|rollback` until the service's tasks converge: polls
 * `/tasks?filters=` about every 100 ms, prints each slot's task as it changes (`1/3: running`, as
 * docker) and `web: 2/3 running` (one line rewritten in place on a terminal), then
 * `verify: Service converged`. While an update or rollback is under way (`UpdateStatus`), waits for
 * the orchestrator's verdict: completed, paused (an error naming the task and why) or rolled back
 * (an error too, when what was asked was an update). Gives up with the reason when new tasks keep
 * failing outside an update, or when time runs out.
 */
import { matchConstraints, parseConstraints } from '../manager/scheduler/constraints.ts';
import type { Node, Service, Task } from '../types/index.ts';
import type { Client } from './client.ts';
import { taskError } from './format.ts';
import { assessJob, isJobService } from './job-progress.ts';
import type { Progress } from './progress-state.ts';

export const POLL_MS = 100;
/** A service whose new tasks failed this many times is not going to converge by waiting. */
export const FAILURE_LIMIT = 3;

export class ConvergeError extends Error {
  override name = 'ConvergeError';
}

export type { Progress } from './progress-state.ts';

/** How many tasks a service should run: replicas, or the nodes a global service can use. */
export function desiredCount(svc: Service, nodes: readonly Node[]): number {
  if (!svc.Spec.Mode?.Global) return svc.Spec.Mode?.Replicated?.Replicas ?? 1;
  let constraints: ReturnType<typeof parseConstraints> = [];
  try {
    constraints = parseConstraints(svc.Spec.TaskTemplate.Placement?.Constraints);
  } catch {}
  return nodes.filter((n) => n.Spec.Availability === 'active' && n.Status?.State !== 'down' && matchConstraints(constraints, n)).length;
}

/** JSON with sorted keys, to compare specs whatever order their fields came in. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

/** Pure: one look at the service's tasks. `known` holds the task IDs that existed before we started. */
export function assess(svc: Service, tasks: readonly Task[], nodes: readonly Node[], known: ReadonlySet<string>, supervised = false): Progress {
  if (isJobService(svc)) return assessJob(svc, tasks, nodes);
  const name = svc.Spec.Name;
  const want = desiredCount(svc, nodes);
  const active = tasks.filter((t) => t.DesiredState === 'running');
  // After an update, only tasks made from the current spec count: the old ones are being replaced.
  const current = canonical(svc.Spec.TaskTemplate);
  const upToDate = (t: Task) => t.ServiceVersion === svc.Version.Index || canonical(t.Spec) === current;
  const running = active.filter((t) => t.Status.State === 'running' && upToDate(t)).length;
  const fresh = tasks.filter((t) => !known.has(t.ID));
  const failed = fresh.filter((t) => t.Status.State === 'failed' || t.Status.State === 'rejected');
  const restart = svc.Spec.TaskTemplate.RestartPolicy?.Condition ?? 'any';
  const completed = fresh.filter((t) => t.Status.State === 'complete').length;
  const pending = active.find((t) => t.Status.State === 'pending' && taskError(t));
  let line = `${name}: ${running}/${want} running`;
  if (pending) line += ` (pending: ${taskError(pending)})`;
  if (running === want && active.length === want) return { done: true, line };
  if (restart !== 'any' && want > 0 && completed >= want && running === 0) return { done: true, line: `${name}: ${completed}/${want} complete` };
  const lastFailure = failed.sort((a, b) => a.Status.Timestamp.localeCompare(b.Status.Timestamp)).at(-1);
  const reason = lastFailure ? `task ${lastFailure.ID.slice(0, 12)} ${lastFailure.Status.State}: ${taskError(lastFailure) || lastFailure.Status.Message}` : '';
  // Under an update the orchestrator's supervisor decides (pause, rollback, continue).
  if (!supervised && (failed.length >= FAILURE_LIMIT || (failed.length > 0 && restart === 'none'))) {
    return { done: false, line, failure: `${name} is not converging: ${reason}` };
  }
  if (reason) line += ` (last failure: ${reason})`;
  return { done: false, line };
}

export interface WaitOptions {
  timeoutMs: number;
  write(s: string): void;
  tty: boolean;
  signal?: AbortSignal;
  /** Tasks that existed before the change (their failures are old news). */
  known?: ReadonlySet<string>;
  /** What was asked: a rollback is the goal, not a failure, after `service rollback`. */
  action?: 'update' | 'rollback';
}

/** Each slot's newest task made from the current spec: `1/3: running`, `2/3: failed (exit code 1)`. */
export function slotLines(svc: Service, tasks: readonly Task[], want: number): Map<string, string> {
  const current = canonical(svc.Spec.TaskTemplate);
  const newest = new Map<string, Task>();
  for (const t of tasks) {
    if (t.ServiceVersion !== svc.Version.Index && canonical(t.Spec) !== current) continue;
    const k = t.Slot > 0 ? String(t.Slot) : t.NodeID;
    const prev = newest.get(k);
    if (!prev || prev.CreatedAt < t.CreatedAt || (prev.CreatedAt === t.CreatedAt && prev.Status.Timestamp < t.Status.Timestamp)) newest.set(k, t);
  }
  const out = new Map<string, string>();
  for (const [k, t] of [...newest].sort(([a], [b]) => Number(a) - Number(b) || a.localeCompare(b))) {
    if (t.Slot > want) continue;
    const why = t.Status.State === 'failed' || t.Status.State === 'rejected' ? ` (task ${t.ID.slice(0, 12)}: ${taskError(t) || t.Status.Message})` : '';
    out.set(k, `${t.Slot > 0 ? `${t.Slot}/${want}` : k.slice(0, 12)}: ${t.Status.State}${why}`);
  }
  return out;
}

export async function waitConverged(client: Client, serviceId: string, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const known = opts.known ?? new Set<string>();
  let last = '';
  let shown = '';
  const slotsShown = new Map<string, string>();
  let rollbackSeen = false;
  let rollbackWhy = '';
  const show = (line: string, final = false) => {
    if (opts.tty) opts.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
    else if (line !== shown || final) {
      if (line !== shown) opts.write(`${line}\n`);
    }
    shown = line;
  };
  /** A full line above the summary (which a terminal then draws again). */
  const above = (line: string) => {
    opts.write(opts.tty ? `\r\x1b[K${line}\n${shown}` : `${line}\n`);
  };
  for (;;) {
    const [svc, tasks, nodes] = await Promise.all([client.service(serviceId), client.tasks({ service: [serviceId] }, opts.signal), client.nodes()]);
    const status = svc.UpdateStatus;
    const state = status?.State;
    if (state?.startsWith('rollback') && !rollbackSeen) {
      rollbackSeen = true;
      rollbackWhy = status?.Message ?? 'update rolled back';
      above(`rollback: ${status?.Message ?? 'rolling back'}`);
    }
    const supervised = state === 'updating' || state === 'rollback_started';
    const p = assess(svc, tasks, nodes, known, supervised);
    for (const [k, line] of slotLines(svc, tasks, desiredCount(svc, nodes))) {
      if (slotsShown.get(k) !== line) above(line);
      slotsShown.set(k, line);
    }
    last = p.line;
    if (state === 'paused' || state === 'rollback_paused') {
      show(p.line, true);
      throw new ConvergeError(`${svc.Spec.Name}: ${state === 'paused' ? 'update' : 'rollback'} paused: ${status?.Message ?? ''} (inspect it with "shoal service ps ${svc.Spec.Name}"; "shoal service update ${svc.Spec.Name}" resumes it, "shoal service rollback ${svc.Spec.Name}" goes back)`);
    }
    if (p.done && !supervised) {
      show(p.line, true);
      opts.write('verify: Service converged\n');
      if (rollbackSeen && opts.action !== 'rollback') throw new ConvergeError(`${svc.Spec.Name}: ${rollbackWhy}`);
      return;
    }
    if (p.failure) {
      show(p.line, true);
      throw new ConvergeError(p.failure);
    }
    show(p.line);
    if (Date.now() > deadline) {
      if (opts.tty) opts.write('\n');
      throw new ConvergeError(`${svc.Spec.Name} did not converge within ${opts.timeoutMs < 1000 ? `${opts.timeoutMs}ms` : `${Math.round(opts.timeoutMs / 1000)}s`}: ${last}${supervised ? ` (${state}: ${status?.Message ?? ''})` : ''} (the service is kept; watch it with "shoal service ps ${svc.Spec.Name}")`);
    }
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, POLL_MS);
      opts.signal?.addEventListener('abort', () => { clearTimeout(t); reject(new Error('interrupted')); }, { once: true });
    });
  }
}
