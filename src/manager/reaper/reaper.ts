/**
 * The task reaper: deletes tasks nobody needs any more.
 *  - history: at most `Cluster.Spec.Orchestration.TaskHistoryRetentionLimit` (default 5; negative
 *    keeps all) tasks per slot (replicated: service + slot; global: service + node); the oldest
 *    finished ones go first. A task that is meant to run is never deleted for history.
 *  - tasks with DesiredState `remove`, and tasks of services that no longer exist, once they are
 *    finished or were never assigned to a node.
 */
import { DEFAULT_TASK_HISTORY, isTerminal, stateRank, type Task } from '../../types/index.ts';
import { isJob, jobIteration } from '../orchestrator/jobs/mode.ts';
import { type ObjectEvent, ReconcileStage, type StageOptions } from '../stage.ts';

export interface TaskReaperOptions extends StageOptions {
  /** Most deletions in one transaction (default 200). */
  batchSize?: number;
}

const RUNNING = stateRank('running');
const ASSIGNED = stateRank('assigned');

/** Not on a node (any more): finished, or never given to one. */
function idle(t: Task): boolean {
  return isTerminal(t.Status.State) || stateRank(t.Status.State) < ASSIGNED;
}

/** A past task of its slot: idle and not meant to run. */
function historic(t: Task): boolean {
  return idle(t) && stateRank(t.DesiredState) > RUNNING;
}

function olderFirst(a: Task, b: Task): number {
  if (a.CreatedAt !== b.CreatedAt) return a.CreatedAt < b.CreatedAt ? -1 : 1;
  if (a.Version.Index !== b.Version.Index) return a.Version.Index - b.Version.Index;
  return a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0;
}

export class TaskReaper extends ReconcileStage {
  readonly name = 'reaper';
  private readonly batchSize: number;

  constructor(opts: TaskReaperOptions) {
    super(opts);
    this.batchSize = Math.max(1, opts.batchSize ?? 200);
  }

  /**
   * Services whose tasks the next pass reads: those with a task created or become idle and not
   * meant to run, or deleted; null reads every task (at start, after the cluster's limit changed,
   * after a failed pass). A slot's history is its service's tasks, so the others would delete
   * nothing new: a pass per commit over every task cost the leader 6% of its CPU while 90,000 tasks
   * were created (docs/scale.md, stop 29).
   */
  private dirtyServices: Set<string> | null = null;

  override async stop(): Promise<void> {
    await super.stop();
    this.dirtyServices = null;
  }

  /**
   * A pass deletes idle tasks not meant to run (or of a gone service), and history beyond the
   * limit of a slot: only a new task, or one that became such a task, changes what it deletes.
   */
  protected interested(ev: ObjectEvent): boolean {
    if (ev.table === 'tasks') {
      const t = ev.object as Task;
      const wanted = ev.kind === 'update'
        ? idle(t) && (stateRank(t.DesiredState) > RUNNING || !this.store.get('services', t.ServiceID))
        : ev.kind === 'create';
      if (wanted) this.dirtyServices?.add(t.ServiceID);
      return wanted;
    }
    if (ev.table === 'services') {
      if (ev.kind === 'delete') this.dirtyServices?.add(ev.object.ID);
      return ev.kind === 'delete';
    }
    if (ev.table === 'clusters') this.dirtyServices = null;
    return ev.table === 'clusters';
  }

  private historyLimit(): number {
    const c = this.store.list('clusters')[0];
    const n = c?.Spec?.Orchestration?.TaskHistoryRetentionLimit;
    return typeof n === 'number' && Number.isFinite(n) ? n : DEFAULT_TASK_HISTORY;
  }

  /** A completion of a job's current run: what the jobs stage counts, so never history. */
  private jobCompletion(t: Task): boolean {
    if (t.Status.State !== 'complete' || !t.JobIteration) return false;
    const s = this.store.get('services', t.ServiceID);
    return !!s && isJob(s) && jobIteration(s) === t.JobIteration.Index;
  }

  /** Whether `t` (as read now) is to be deleted, given the slot it is in. */
  private doomed(t: Task): boolean {
    const orphan = t.DesiredState === 'remove' || !this.store.get('services', t.ServiceID);
    return orphan && idle(t);
  }

  protected async reconcile(signal: AbortSignal): Promise<void> {
    const todo = this.dirtyServices;
    this.dirtyServices = new Set();
    try {
      await this.reap(todo, signal);
    } catch (e) {
      this.dirtyServices = null; // the pass that runs again (or after a back-off) reads every task
      throw e;
    }
  }

  /** Delete what is doomed or history among the tasks of `todo` (null: of every service). */
  private async reap(todo: ReadonlySet<string> | null, signal: AbortSignal): Promise<void> {
    const limit = this.historyLimit();
    const doomed = new Set<string>();
    const slots = new Map<string, Task[]>();
    const tasks = todo ? [...todo].flatMap((id) => this.store.by('tasks', 'service', id)) : this.store.list('tasks');
    for (const t of tasks) {
      if (this.doomed(t)) {
        doomed.add(t.ID);
        continue;
      }
      const key = t.Slot > 0 ? `${t.ServiceID}/${t.Slot}` : `${t.ServiceID}/node/${t.NodeID}`;
      let group = slots.get(key);
      if (!group) slots.set(key, (group = []));
      group.push(t);
    }
    const history = new Set<string>();
    if (limit >= 0) {
      for (const group of slots.values()) {
        let excess = group.length - limit;
        if (excess <= 0) continue;
        for (const t of group.filter((t) => historic(t) && !this.jobCompletion(t)).sort(olderFirst)) {
          if (excess-- <= 0) break;
          history.add(t.ID);
        }
      }
    }
    const ids = [...doomed, ...history];
    for (let i = 0; i < ids.length && !signal.aborted; i += this.batchSize) {
      const chunk = ids.slice(i, i + this.batchSize);
      // Checked again inside the transaction: a task may have moved on since the pass read it.
      await this.store.update((tx) => {
        for (const id of chunk) {
          const cur = tx.get('tasks', id);
          if (cur && (history.has(id) ? historic(cur) : this.doomed(cur))) tx.delete('tasks', id);
        }
      }, signal);
    }
  }
}
