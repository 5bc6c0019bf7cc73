/**
 * The scheduler: takes `pending` tasks that should run and assigns each to a node (`assigned`).
 * Nodes go through the filter pipeline; among those left, spread: fewest tasks of the same service,
 * then fewest tasks in total, then node id. A task no node can take stays `pending` with an
 * explanation in its status, and is tried again whenever a node or a task changes.
 */
import { isActiveOnNode, stateRank, type Node, type Task, type TaskStatus } from '../../types/index.ts';
import { isoAt, type ObjectEvent, ReconcileStage, type StageOptions, type TaskChange, writeTasks } from '../stage.ts';
import { schedulerPlacements } from '../../lib/metrics.ts';
import { constraintCache, DEFAULT_FILTERS, type Filter, type FilterContext, type NodeLoad, Pipeline } from './filters.ts';
import { addLoad, Placement } from './placement.ts';

export interface SchedulerOptions extends StageOptions {
  /** The filter pipeline, in order (default: ready, runtime, constraints, cpu, memory). */
  filters?: readonly Filter[];
  /** Most task writes in one transaction (default 1000; fewer when they would not fit in one log entry). */
  batchSize?: number;
}

const RUNNING = stateRank('running');

/** A pass's write of one task, with the node it places the task on ('' for a message only). */
type Placed = TaskChange & { nodeId: string };

/** Tasks that hold a node's resources and count for spread. */
export function occupiesNode(t: Task): boolean {
  return !!t.NodeID && isActiveOnNode(t.Status.State) && stateRank(t.DesiredState) <= RUNNING;
}

/** Still waiting for a node, and meant to run. */
function schedulable(t: Task): boolean {
  return t.Status.State === 'pending' && stateRank(t.DesiredState) <= RUNNING;
}

export class Scheduler extends ReconcileStage {
  readonly name = 'scheduler';
  private readonly pipeline: Pipeline;
  private readonly filters: readonly Filter[];
  private readonly batchSize: number;
  /**
   * Tasks whose write an earlier pass left in flight, not applied yet: task id → the node it was
   * placed on ('' for a message that no node can take it). A pass meanwhile leaves them alone and
   * counts the placements' load, as Nomad's plan applier evaluates the next plan over the one
   * being committed: a burst of services is placed as their tasks arrive, not one commit at a time.
   */
  private readonly writing = new Map<string, string>();

  constructor(opts: SchedulerOptions) {
    super(opts);
    this.filters = opts.filters ?? DEFAULT_FILTERS;
    this.pipeline = new Pipeline(this.filters);
    this.batchSize = Math.max(1, opts.batchSize ?? 1000);
  }

  /**
   * A pass decides from the nodes, the tasks waiting for one, and the load of the others: a task
   * that moves on from `assigned` to `running` (most writes at scale) changes none of those.
   */
  protected interested(ev: ObjectEvent): boolean {
    if (ev.table !== 'tasks') return ev.table === 'nodes';
    const t = ev.object as Task;
    if (ev.kind !== 'update') return schedulable(t) || occupiesNode(t);
    const old = ev.old as Task;
    return schedulable(t) || schedulable(old) || occupiesNode(t) !== occupiesNode(old) || (occupiesNode(t) && t.NodeID !== old.NodeID);
  }

  protected async reconcile(signal: AbortSignal): Promise<void> {
    const changes = this.plan();
    if (changes.length === 0) return;
    for (const c of changes) this.writing.set(c.id, c.nodeId);
    this.inBackground(this.write(changes, signal));
  }

  private async write(changes: readonly Placed[], signal: AbortSignal): Promise<void> {
    let conflicted: boolean;
    try {
      conflicted = await writeTasks(this.store, changes, this.batchSize, signal);
    } finally {
      // Applied (the store now says where each went), or not written: a pass decides them again.
      for (const c of changes) this.writing.delete(c.id);
    }
    if (conflicted) this.kick();
  }

  /** Decide every assignment and message change of one pass, against the current store. */
  private plan(): Placed[] {
    const nodes = this.store.list('nodes').sort((a, b) => (a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0));
    const byId = new Map(nodes.map((n) => [n.ID, n]));
    const loads = new Map<string, NodeLoad>();
    const load = (id: string): NodeLoad => {
      let l = loads.get(id);
      if (!l) loads.set(id, (l = { total: 0, perService: new Map(), nanoCPUs: 0, memoryBytes: 0 }));
      return l;
    };
    const pending: Task[] = [];
    for (const t of this.store.list('tasks')) {
      if (occupiesNode(t)) addLoad(load(t.NodeID), t);
      else if (schedulable(t)) {
        const writing = this.writing.get(t.ID);
        if (writing === undefined) pending.push(t);
        else if (writing) addLoad(load(writing), t);
      }
    }
    if (pending.length === 0) return [];
    pending.sort((a, b) => cmp(a.CreatedAt, b.CreatedAt) || a.Slot - b.Slot || cmp(a.ID, b.ID));
    const ctx: FilterContext = { load, constraints: constraintCache() };
    const placement = new Placement(this.pipeline, this.filters, nodes, byId, ctx, load);
    const now = isoAt(this.clock);
    const writes: Placed[] = [];
    for (const task of pending) {
      const placed = placement.place(task);
      if (placed.node) {
        schedulerPlacements.inc();
        const status: TaskStatus = { Timestamp: now, State: 'assigned', Message: 'scheduler assigned task to node' };
        const nodeId = placed.node.ID;
        writes.push({
          id: task.ID,
          nodeId,
          change: (cur) => (schedulable(cur) && (!cur.NodeID || cur.NodeID === nodeId) ? { ...cur, NodeID: nodeId, Status: status } : null),
        });
      } else if (task.Status.Err !== placed.explanation || task.Status.Message !== placed.explanation) {
        const explanation = placed.explanation;
        writes.push({
          id: task.ID,
          nodeId: '',
          change: (cur) => (schedulable(cur) ? { ...cur, Status: { ...cur.Status, Message: explanation, Err: explanation } } : null),
        });
      }
    }
    return writes;
  }
}

/** Spread: fewest tasks of the same service, then fewest tasks in total, then node id (Placement keeps this order in a heap). */
export function pickNode(eligible: readonly Node[], task: Task, load: (id: string) => NodeLoad): Node | undefined {
  let best: Node | undefined;
  let bestKey: [number, number, string] | undefined;
  for (const n of eligible) {
    const l = load(n.ID);
    const key: [number, number, string] = [l.perService.get(task.ServiceID) ?? 0, l.total, n.ID];
    if (!bestKey || key[0] < bestKey[0] || (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && key[2] < bestKey[2])))) {
      best = n;
      bestKey = key;
    }
  }
  return best;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
