/**
 * The update supervisor of one service (swarmkit's updater, reshaped as a pure step the
 * orchestrator runs on every pass): which outdated slots to replace now, and what the service's
 * `UpdateStatus` becomes.
 *
 *  - An update starts when the service has tasks made from an older template and no update is
 *    under way (the API clears `UpdateStatus` on every update; a rollback sets `rollback_started`).
 *  - At most `Parallelism` slots are being replaced at a time: a slot is busy until its
 *    replacement runs (a task with a health check runs only once healthy), then for `Delay`; a
 *    freed slot takes the next outdated one.
 *  - A replacement that fails, or ends, before it has run for `Monitor` counts as a failure. When
 *    failures / slots exceeds `MaxFailureRatio`, `FailureAction` applies: `pause` holds the
 *    rollout (until the service is updated again), `rollback` puts the previous spec back and rolls
 *    back under `RollbackConfig`, `continue` carries on. A rollback that fails pauses.
 *  - Done when no slot is outdated and the last replacements have run for `Monitor`.
 *
 * No timers and no store access here: the orchestrator sets a timer for `wakeAt` and writes the
 * decision in its pass's transaction. The supervisor's memory (when each replacement was first
 * seen running, which failed) is kept only after that transaction commits (`clone()`), and is lost
 * with a manager restart: the rollout then carries on from the store, counting afresh.
 */
import { isTerminal, stateRank, type Service, type Task, type UpdateStatus } from '../../../types/index.ts';
import { canonical } from '../../stage.ts';
import { isPaused, isRolling, isRollingBack, rolloutConfig, type RolloutConfig } from './config.ts';

const RUNNING = stateRank('running');
/** Ends of a replacement that count against the rollout (`shutdown` is one the manager asked for). */
const FAILURES = new Set(['failed', 'rejected', 'complete']);

export interface RolloutInput {
  service: Service;
  /** Every task of the service, as the pass saw it. */
  tasks: readonly Task[];
  /** Slot key → the slot's current task after the pass's other decisions. */
  current: ReadonlyMap<string, Task>;
  /** Ids of tasks the pass creates. */
  created: ReadonlySet<string>;
  /** Slots waiting for their outdated task to stop before the successor is made (stop-first). */
  waitingToStop: number;
  /** How many slots the service has (with those waiting for a restart): the ratio's denominator. */
  slots: number;
  isOutdated(t: Task): boolean;
  now: number;
  nowIso: string;
}

export interface RolloutDecision {
  config: RolloutConfig;
  /** Outdated slots to replace in this pass. */
  replace: [string, Task][];
  /** The service's new UpdateStatus, when it changes. */
  status?: UpdateStatus;
  /** Put the previous spec back (with `status` rollback_started). */
  rollback?: boolean;
  /** Run another pass at this clock time (ms): the batch delay or the end of a monitor period. */
  wakeAt?: number;
}

export class UpdateSupervisor {
  /** The template (canonical JSON) being rolled out. */
  private template = '';
  /** Tasks there before this rollout: their ends are not its failures. */
  private before = new Set<string>();
  /** Replacement → when it was first seen running (clock ms). */
  private runningAt = new Map<string, number>();
  private failed = new Set<string>();
  private lastFailure?: Task;

  clone(): UpdateSupervisor {
    const c = new UpdateSupervisor();
    Object.assign(c, this, { before: new Set(this.before), runningAt: new Map(this.runningAt), failed: new Set(this.failed) });
    return c;
  }

  step(inp: RolloutInput): RolloutDecision {
    const { service: s, now } = inp;
    const config = rolloutConfig(s);
    const d: RolloutDecision = { config, replace: [] };
    const template = canonical(s.Spec.TaskTemplate);
    if (this.template !== template) this.restart(template, inp);
    const status = s.UpdateStatus;
    if (isPaused(status?.State)) return d;
    const outdated = [...inp.current].filter(([, t]) => !inp.created.has(t.ID) && inp.isOutdated(t));
    let next: UpdateStatus | undefined = status;
    if (!isRolling(status?.State)) {
      if (outdated.length === 0) return d;
      this.restart(template, inp); // a paused rollout resumed by an update counts its failures afresh
      next = d.status = { State: 'updating', StartedAt: inp.nowIso, Message: 'update in progress' };
    }
    const back = isRollingBack(s);
    const what = back ? 'rollback' : 'update';

    this.observe(inp, config.monitorMs);
    const slots = Math.max(1, inp.slots);
    if (config.failureAction !== 'continue' && this.failed.size > 0 && this.failed.size / slots > config.maxFailureRatio) {
      const t = this.lastFailure!;
      const why = `failure or early termination of task ${t.ID.slice(0, 12)} (${t.Name ?? `slot ${t.Slot}`}): ${t.Status.State}: ${t.Status.Err || t.Status.Message}`;
      this.forget();
      if (config.failureAction === 'rollback' && !back && s.PreviousSpec) {
        d.rollback = true;
        d.status = { State: 'rollback_started', StartedAt: inp.nowIso, Message: `update rolled back due to ${why}` };
      } else {
        d.status = { ...next, State: back ? 'rollback_paused' : 'paused', Message: `${what} paused due to ${why}` };
      }
      return d;
    }

    const inFlight = inp.waitingToStop + [...inp.current.values()].filter((t) => !inp.isOutdated(t) && stateRank(t.Status.State) < RUNNING).length;
    if (outdated.length === 0) {
      if (inFlight > 0) return d;
      // Every slot replaced: done once the last replacements have run for Monitor.
      let until = 0;
      for (const t of inp.current.values()) until = Math.max(until, (this.runningAt.get(t.ID) ?? -Infinity) + config.monitorMs);
      if (now < until) {
        d.wakeAt = until;
        return d;
      }
      // A rollback's end keeps why it happened: a client that only sees the end still learns it.
      const why = back && next?.Message ? ` (${next.Message})` : '';
      d.status = { ...next, State: back ? 'rollback_completed' : 'completed', CompletedAt: inp.nowIso, Message: `${what} completed${why}` };
      this.forget();
      return d;
    }
    // `Parallelism` slots in flight at a time, as swarmkit's update workers: a slot is busy from its
    // replacement until that runs, then for `Delay`; a freed slot takes the next outdated one
    // (no waiting for the slowest of a batch).
    const cooling = config.delayMs > 0 ? [...this.runningAt.values()].map((at) => at + config.delayMs).filter((until) => until > now) : [];
    const free = config.parallelism === 0 ? outdated.length : config.parallelism - inFlight - cooling.length;
    if (free <= 0) {
      if (cooling.length) d.wakeAt = Math.min(...cooling);
      return d;
    }
    // Not running ones first (cheapest to replace), then by slot.
    const order = (t: Task) => (t.Status.State === 'running' ? 1 : 0);
    outdated.sort(([a, x], [b, y]) => order(x) - order(y) || x.Slot - y.Slot || (a < b ? -1 : 1));
    d.replace = outdated.slice(0, free);
    return d;
  }

  /** A new template: a new rollout starts now (without waiting for the previous one's delay). */
  private restart(template: string, inp: RolloutInput): void {
    this.template = template;
    this.before = new Set(inp.tasks.filter((t) => !inp.created.has(t.ID)).map((t) => t.ID));
    this.runningAt.clear();
    this.failed.clear();
    this.lastFailure = undefined;
  }

  /** The rollout is over (or held): nothing of it is needed again, as the next one starts afresh. */
  private forget(): void {
    this.before.clear();
    this.runningAt.clear();
    this.failed.clear();
  }

  /** Replacements seen running start their monitor period; those that end within it are failures. */
  private observe(inp: RolloutInput, monitorMs: number): void {
    for (const t of inp.tasks) {
      if (this.before.has(t.ID) || this.failed.has(t.ID) || inp.isOutdated(t)) continue;
      const state = t.Status.State;
      if (state === 'running') {
        if (!this.runningAt.has(t.ID)) this.runningAt.set(t.ID, inp.now);
      } else if (isTerminal(state)) {
        const ranAt = this.runningAt.get(t.ID);
        if (FAILURES.has(state) && (ranAt === undefined || inp.now - ranAt <= monitorMs)) {
          this.failed.add(t.ID);
          this.lastFailure = t;
        } else {
          this.before.add(t.ID); // ended after its monitor period, or was stopped: never looked at again
        }
      }
    }
  }
}
