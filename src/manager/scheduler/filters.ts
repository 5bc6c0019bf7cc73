/**
 * The scheduler's filters: small rules that each say whether a node can take a task, and how to
 * explain to a user why N nodes could not. They run in order; a node is counted against the first
 * filter it fails, so "why is my task pending" has one answer per node.
 */
import { runtimeOf, type Node, type Task } from '../../types/index.ts';
import { nodes } from '../stage.ts';
import { type Constraint, matchConstraint, matchConstraints, parseConstraints } from './constraints.ts';

/** What is already on a node: active tasks (assigned..running, desired ≤ running). */
export interface NodeLoad {
  total: number;
  perService: Map<string, number>;
  nanoCPUs: number;
  memoryBytes: number;
}

export interface FilterContext {
  load(nodeId: string): NodeLoad;
  /** The task's parsed constraints; null when they do not parse (then no node satisfies them). */
  constraints(task: Task): Constraint[] | null;
}

export interface Filter {
  readonly name: string;
  check(node: Node, task: Task, ctx: FilterContext): boolean;
  /**
   * What of the task `check` and `explain` read: tasks of one service with equal keys get the same
   * answers, so the scheduler checks a node once for all of them. Without it, every task is checked alone.
   */
  taskKey?(task: Task): string;
  /**
   * `check` reads the node's load (what the pass has placed so far): it is asked again at each
   * placement. Its verdict for a task may only turn from pass to fail as load grows.
   */
  readonly usesLoad?: boolean;
  /** Why `count` nodes failed this filter, e.g. `insufficient memory on 2 nodes`; `failed` are those nodes. */
  explain(count: number, task: Task, failed?: readonly Node[]): string;
}

/** `2 nodes drained; 1 node down`: one part per reason ({nodes}: `1 node`, {lack}: its verb). */
function countBy(failed: readonly Node[], reason: (n: Node) => string): string {
  const counts = new Map<string, number>();
  for (const n of failed) counts.set(reason(n), (counts.get(reason(n)) ?? 0) + 1);
  return [...counts].map(([why, n]) => why.replace('{nodes}', nodes(n)).replace('{lack}', n === 1 ? 'lacks' : 'lack')).join('; ');
}

export const readyFilter: Filter = {
  name: 'ready',
  taskKey: () => '',
  check: (node) => node.Status?.State === 'ready' && node.Spec?.Availability === 'active',
  explain(n, _task, failed = []) {
    if (failed.length !== n) return `${nodes(n)} not available for new tasks`;
    return countBy(failed, (node) => {
      if (node.Spec?.Availability === 'drain') return '{nodes} drained';
      if (node.Spec?.Availability === 'pause') return '{nodes} paused';
      return node.Status?.State === 'down' ? '{nodes} down' : `{nodes} not ready (${node.Status?.State ?? 'unknown'})`;
    });
  },
};

export const runtimeFilter: Filter = {
  name: 'runtime',
  taskKey: (task) => runtimeOf(task.Spec),
  check(node, task) {
    const want = runtimeOf(task.Spec);
    return (node.Description?.Runtimes ?? []).some((r) => r.Name === want && r.Healthy);
  },
  explain(n, task, failed = []) {
    const want = runtimeOf(task.Spec);
    if (failed.length !== n) return `runtime "${want}" not available on ${nodes(n)}`;
    // What the nodes say about it (its fingerprint's message), so "why pending" names the cause.
    const short = (m: string) => (m.length > 160 ? `${m.slice(0, 157)}...` : m);
    const messages = new Set<string>();
    const parts = countBy(failed, (node) => {
      const r = (node.Description?.Runtimes ?? []).find((x) => x.Name === want);
      if (!r) return `{nodes} {lack} runtime "${want}"`;
      if (r.Message && messages.size < 2) messages.add(short(r.Message));
      return `runtime "${want}" unhealthy on {nodes}`;
    });
    return messages.size ? `${parts}: ${[...messages].join('; ')}` : parts;
  },
};

export const cpuFilter: Filter = {
  name: 'cpu',
  usesLoad: true,
  taskKey: (task) => String(task.Spec.Resources?.Reservations?.NanoCPUs ?? 0),
  check(node, task, ctx) {
    const want = task.Spec.Resources?.Reservations?.NanoCPUs ?? 0;
    if (want <= 0) return true;
    return want <= (node.Description?.Resources?.NanoCPUs ?? 0) - ctx.load(node.ID).nanoCPUs;
  },
  explain: (n) => `insufficient CPU on ${nodes(n)}`,
};

export const memoryFilter: Filter = {
  name: 'memory',
  usesLoad: true,
  taskKey: (task) => String(task.Spec.Resources?.Reservations?.MemoryBytes ?? 0),
  check(node, task, ctx) {
    const want = task.Spec.Resources?.Reservations?.MemoryBytes ?? 0;
    if (want <= 0) return true;
    return want <= (node.Description?.Resources?.MemoryBytes ?? 0) - ctx.load(node.ID).memoryBytes;
  },
  explain: (n) => `insufficient memory on ${nodes(n)}`,
};

export const constraintFilter: Filter = {
  name: 'constraints',
  taskKey: (task) => JSON.stringify(task.Spec.Placement?.Constraints ?? []),
  check(node, task, ctx) {
    const cs = ctx.constraints(task);
    return cs !== null && matchConstraints(cs, node);
  },
  explain(n, task, failed = []) {
    let cs: Constraint[] | null = null;
    try {
      cs = parseConstraints(task.Spec.Placement?.Constraints);
    } catch {}
    if (!cs || failed.length !== n) return `scheduling constraints not satisfied on ${nodes(n)}`;
    // Named: the first constraint each node fails, so the user sees which one to fix.
    return countBy(failed, (node) => `constraint ${cs.find((c) => !matchConstraint(c, node))?.raw ?? '?'} not satisfied on {nodes}`);
  },
};

export const DEFAULT_FILTERS: readonly Filter[] = [readyFilter, runtimeFilter, constraintFilter, cpuFilter, memoryFilter];

/** Runs filters over nodes for one task, remembering how many nodes each filter turned away. */
export class Pipeline {
  constructor(private readonly filters: readonly Filter[] = DEFAULT_FILTERS) {}

  /** Nodes that pass every filter, and the explanation for when none does. */
  run(task: Task, candidates: readonly Node[], ctx: FilterContext): { eligible: Node[]; explanation: string } {
    const failed = new Map<Filter, Node[]>();
    const eligible: Node[] = [];
    for (const node of candidates) {
      const f = this.filters.find((f) => !f.check(node, task, ctx));
      if (!f) eligible.push(node);
      else {
        const list = failed.get(f);
        if (list) list.push(node);
        else failed.set(f, [node]);
      }
    }
    return { eligible, explanation: explain(this.filters, failed, task, candidates.length) };
  }
}

function explain(filters: readonly Filter[], failed: Map<Filter, Node[]>, task: Task, total: number): string {
  if (total === 0) return task.NodeID ? `no suitable node (node ${task.NodeID} is not in the cluster)` : 'no suitable node (no nodes in the cluster)';
  const parts = filters.filter((f) => failed.has(f)).map((f) => f.explain(failed.get(f)!.length, task, failed.get(f)!));
  return parts.length ? `no suitable node (${parts.join('; ')})` : 'no suitable node';
}

/** Constraints of a task spec, parsed once per pass. */
export function constraintCache(): (task: Task) => Constraint[] | null {
  const cache = new Map<string, Constraint[] | null>();
  return (task) => {
    const raw = task.Spec.Placement?.Constraints;
    if (!raw || raw.length === 0) return [];
    const key = JSON.stringify(raw);
    let v = cache.get(key);
    if (v === undefined) {
      try {
        v = parseConstraints(raw);
      } catch {
        v = null;
      }
      cache.set(key, v);
    }
    return v;
  };
}
