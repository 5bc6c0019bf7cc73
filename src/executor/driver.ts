/**
 * The single driver of task transitions (swarmkit's `exec.Do`). Nothing else moves a task's
 * observed state on a worker; controllers only do the work.
 *
 * Two shapes, same rules:
 *
 *   step(observed, desired, ctl, { signal, graceMs }) → Promise<StepResult | null>
 *     Performs the one next step and returns the new status, or null when there is nothing to do
 *     (the task is terminal, or it has reached its desired state, e.g. desired `ready`).
 *
 *   new TaskDriver(ctl, { observed, desired, graceMs, recovering? })
 *   TaskDriver.forTask(task, ctl, { recovering? })   // the same, from a Task
 *     driver.setDesired(state)                 // the manager changed the desired state
 *     for await (const s of driver.run(signal)) report(s)
 *     `run` yields every new status and returns once the task is terminal. While the task runs it
 *     waits in `ctl.wait()`; `setDesired('shutdown')` interrupts that wait and stops the task.
 *     `recovering: true` after a daemon restart: a task last seen starting/running is re-attached
 *     with `ctl.recover()` instead of being started again. Aborting `signal` (daemon shutdown)
 *     ends `run` without touching the task; the worker decides whether to `stop()` it.
 *
 * Order: new/pending/assigned → accepted → preparing → ready → starting → running →
 * complete | failed; desired shutdown (or later) at any point before a terminal state → stop →
 * shutdown. Errors before `starting` reject the task; errors from `starting` on fail it. A status
 * never moves backward: a step that would is refused with an ExecutorError.
 * The worker calls `ctl.remove()` itself when the task leaves its assignments.
 */
import {
  canAdvance, isTerminal, stateRank, stopGraceMs, type Task, type TaskState, type TaskStatus,
} from '../types/index.ts';
import type { Controller } from './contract.ts';
import { ExecutorError, errorMessage } from './errors.ts';

export interface StepResult {
  state: TaskState;
  message: string;
  /** Set when the step failed: the error's message, for `TaskStatus.Err`. */
  err?: string;
  exitCode?: number;
  /** The task's main process, when the executor has one (reported as ContainerStatus.PID). */
  pid?: number;
}

/** A step's result as the `TaskStatus` a worker reports. */
export function toTaskStatus(r: StepResult, now: Date = new Date()): TaskStatus {
  return {
    Timestamp: now.toISOString(), State: r.state, Message: r.message,
    ...(r.err !== undefined ? { Err: r.err } : {}),
    ...(r.exitCode !== undefined || r.pid !== undefined
      ? { ContainerStatus: { ...(r.pid !== undefined ? { PID: r.pid } : {}), ...(r.exitCode !== undefined ? { ExitCode: r.exitCode } : {}) } }
      : {}),
  };
}

export interface StepOptions {
  /** Aborts a step in progress (in `wait`, only the waiting is aborted; the task keeps running). */
  signal: AbortSignal;
  /** Grace period for `stop`, from `stopGraceMs(task.Spec)`. */
  graceMs: number;
}

/** How long to wait for the exit status of a task that was just stopped. */
const EXIT_AFTER_STOP_MS = 2_000;

export async function step(
  observed: TaskState, desired: TaskState, ctl: Controller, opts: StepOptions,
): Promise<StepResult | null> {
  if (isTerminal(observed)) return null;
  const result = await nextStep(observed, desired, ctl, opts);
  if (result && !(canAdvance(observed, result.state) && result.state !== observed)) {
    throw new ExecutorError(`refused backward task transition ${observed} → ${result.state}`);
  }
  return result;
}

async function nextStep(
  observed: TaskState, desired: TaskState, ctl: Controller, opts: StepOptions,
): Promise<StepResult | null> {
  if (stateRank(desired) > stateRank('running')) return shutdown(observed, ctl, opts.graceMs);
  // Reached the desired state (e.g. desired `ready` for start-first updates). A running task with
  // desired running still has a step to take: waiting for it to end.
  if (stateRank(observed) >= stateRank(desired) && observed !== 'running') return null;
  opts.signal.throwIfAborted();
  const fatal = (err: unknown): StepResult => {
    // Before starting the task never ran: rejected. From starting on it did (or may have): failed.
    const state: TaskState = stateRank(observed) < stateRank('starting') ? 'rejected' : 'failed';
    const message = errorMessage(err);
    return { state, message, err: message };
  };
  switch (observed) {
    case 'new': case 'pending': case 'assigned':
      return { state: 'accepted', message: 'accepted' };
    case 'accepted':
      return { state: 'preparing', message: 'preparing' };
    case 'preparing':
      try { await ctl.prepare(opts.signal); } catch (err) { rethrowAbort(err, opts.signal); return fatal(err); }
      return { state: 'ready', message: 'prepared' };
    case 'ready':
      return { state: 'starting', message: 'starting' };
    case 'starting':
      try { await ctl.start(opts.signal); } catch (err) { rethrowAbort(err, opts.signal); return fatal(err); }
      return { state: 'running', message: 'started', ...(await pidOf(ctl)) };
    case 'running': {
      let exit;
      try { exit = await ctl.wait(opts.signal); } catch (err) { rethrowAbort(err, opts.signal); return fatal(err); }
      if (exit.exitCode === 0 && !exit.signal) return { state: 'complete', message: 'finished', exitCode: 0 };
      return { state: 'failed', message: exit.message, err: exit.message, exitCode: exit.exitCode };
    }
    default:
      return null;
  }
}

async function shutdown(observed: TaskState, ctl: Controller, graceMs: number): Promise<StepResult> {
  try { await ctl.stop(graceMs); } catch (err) {
    const message = `stop failed: ${errorMessage(err)}`;
    return { state: 'failed', message, err: message };
  }
  if (stateRank(observed) < stateRank('starting')) return { state: 'shutdown', message: 'shutdown before start' };
  // Report the exit code of the stopped work when it is at hand; never hang on it.
  const bound = AbortSignal.timeout(EXIT_AFTER_STOP_MS);
  const exit = await ctl.wait(bound).catch(() => undefined);
  return { state: 'shutdown', message: 'shutdown', ...(exit ? { exitCode: exit.exitCode } : {}) };
}

function rethrowAbort(err: unknown, signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason ?? err;
}

/** After a daemon restart: re-attach a task last seen starting or running. Null when nothing changes. */
export async function recoverStep(observed: TaskState, ctl: Controller): Promise<StepResult | null> {
  if (observed !== 'starting' && observed !== 'running') return null;
  let alive: boolean;
  try { alive = await ctl.recover(); } catch (err) {
    const message = `recover failed: ${errorMessage(err)}`;
    return { state: 'failed', message, err: message };
  }
  if (!alive) {
    const message = 'task was not running after the daemon restarted';
    return { state: 'failed', message, err: message };
  }
  return observed === 'starting' ? { state: 'running', message: 'recovered', ...(await pidOf(ctl)) } : null;
}

/** `{ pid }` from the controller (`pid()`, else its stats), when it has one; never fails the step. */
async function pidOf(ctl: Controller): Promise<{ pid?: number }> {
  try {
    const pid = ctl.pid ? await ctl.pid() : (await ctl.stats()).pid;
    return pid !== undefined ? { pid } : {};
  } catch { return {}; }
}

export interface TaskDriverInit {
  observed: TaskState;
  desired: TaskState;
  graceMs: number;
  /** True on a fresh controller after a daemon restart: re-attach instead of starting again. */
  recovering?: boolean;
}

export class TaskDriver {
  #observed: TaskState;
  #desired: TaskState;
  #recovering: boolean;
  /** Aborted when the desired state changes, to interrupt a `wait` or a pause at the desired state. */
  #desiredChanged = new AbortController();

  constructor(readonly ctl: Controller, private readonly init: TaskDriverInit) {
    this.#observed = init.observed;
    this.#desired = init.desired;
    this.#recovering = init.recovering ?? false;
  }

  /** A driver for `task` as the worker knows it: its observed and desired states and grace period. */
  static forTask(task: Task, ctl: Controller, opts: { recovering?: boolean } = {}): TaskDriver {
    return new TaskDriver(ctl, {
      observed: task.Status.State, desired: task.DesiredState, graceMs: stopGraceMs(task.Spec), ...opts,
    });
  }

  get observed(): TaskState { return this.#observed; }
  get desired(): TaskState { return this.#desired; }

  /** Desired state only moves forward too; an older value (a stale assignment) is ignored. */
  setDesired(state: TaskState): void {
    if (stateRank(state) <= stateRank(this.#desired)) return;
    this.#desired = state;
    const changed = this.#desiredChanged;
    this.#desiredChanged = new AbortController();
    changed.abort(new DesiredStateChanged());
  }

  async *run(signal: AbortSignal): AsyncGenerator<StepResult, void> {
    if (this.#recovering) {
      this.#recovering = false;
      const r = await recoverStep(this.#observed, this.ctl);
      if (r) { this.#observed = r.state; yield r; }
    }
    while (!isTerminal(this.#observed)) {
      if (signal.aborted) return;
      const changed = this.#desiredChanged.signal;
      const stepSignal = AbortSignal.any([signal, changed]);
      let r: StepResult | null;
      try {
        r = await step(this.#observed, this.#desired, this.ctl, { signal: stepSignal, graceMs: this.init.graceMs });
      } catch (err) {
        if (signal.aborted) return;
        if (changed.aborted) continue; // re-evaluate with the new desired state
        throw err;
      }
      if (r === null) { await untilAborted(stepSignal); continue; }
      this.#observed = r.state;
      yield r;
    }
  }
}

export class DesiredStateChanged extends Error {
  override name = 'DesiredStateChanged';
  constructor() { super('desired state changed'); }
}

/** Parks until `signal` aborts; this wait's bound is the signal (desired change or shutdown). */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
