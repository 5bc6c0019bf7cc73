/**
 * One pass's placement decisions, without scanning every node for every task.
 *
 * Tasks that would get the same answer from every filter (same service, same preset node, same key
 * from each filter's `taskKey`) form a group. A group runs the load-free filters once over its
 * candidates; the nodes left sit in a min-heap ordered by the spread rule (fewest tasks of the
 * service, then fewest tasks, then node id). Placing a task pops the best node, re-checks only the
 * load filters (cpu, memory) and pushes it back with its new load. A node whose load changed through
 * another group's placement carries a stale key in this group's heap: keys only grow within a pass,
 * so a stale entry is fixed when it reaches the top (re-pushed with its current key) and the first
 * entry found current is the true minimum. The outcome is the same node, for each task in the same
 * order, as checking every node (Pipeline.run) and taking the best of them (pickNode).
 */
import type { Node, Task } from '../../types/index.ts';
import { MinHeap } from '../../lib/heap.ts';
import type { Filter, FilterContext, NodeLoad, Pipeline } from './filters.ts';

interface Entry {
  node: Node;
  perService: number;
  total: number;
}

/** The spread order (pickNode's): fewer tasks of the service, then fewer tasks in all, then the lower node id. */
function before(a: Entry, b: Entry): boolean {
  if (a.perService !== b.perService) return a.perService < b.perService;
  if (a.total !== b.total) return a.total < b.total;
  return a.node.ID < b.node.ID;
}

interface Group {
  serviceId: string;
  candidates: readonly Node[];
  heap: MinHeap<Entry>;
  /** The explanation for a task of this group that no node takes, and the placement count it holds for. */
  explained?: { at: number; text: string };
}

export type Placed = { node: Node } | { node: undefined; explanation: string };

export class Placement {
  private readonly groups = new Map<string, Group>();
  private readonly staticFilters: readonly Filter[];
  private readonly loadFilters: readonly Filter[];
  /** Placements so far: loads change only with them, so an explanation holds until the next one. */
  private placements = 0;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly filters: readonly Filter[],
    private readonly nodes: readonly Node[],
    private readonly byId: ReadonlyMap<string, Node>,
    private readonly ctx: FilterContext,
    private readonly load: (id: string) => NodeLoad,
  ) {
    this.staticFilters = filters.filter((f) => !f.usesLoad);
    this.loadFilters = filters.filter((f) => f.usesLoad);
  }

  /** The node for `task` (its load already counted), or why there is none. */
  place(task: Task): Placed {
    const g = this.groupOf(task);
    for (;;) {
      const top = g.heap.peek();
      if (!top) break;
      const l = this.load(top.node.ID);
      const perService = l.perService.get(g.serviceId) ?? 0;
      if (perService !== top.perService || l.total !== top.total) {
        g.heap.pop();
        g.heap.push({ node: top.node, perService, total: l.total });
        continue;
      }
      g.heap.pop();
      // Load only grows within a pass: a node that fails a load filter now fails it for the rest of the group.
      if (!this.loadFilters.every((f) => f.check(top.node, task, this.ctx))) continue;
      addLoad(l, task);
      this.placements++;
      g.heap.push({ node: top.node, perService: perService + 1, total: l.total });
      return { node: top.node };
    }
    if (g.explained?.at !== this.placements) g.explained = { at: this.placements, text: this.pipeline.run(task, g.candidates, this.ctx).explanation };
    return { node: undefined, explanation: g.explained.text };
  }

  private groupOf(task: Task): Group {
    const key = groupKey(task, this.filters);
    let g = this.groups.get(key);
    if (g) return g;
    const candidates = task.NodeID ? [this.byId.get(task.NodeID)].filter((n): n is Node => !!n) : this.nodes;
    const heap = new MinHeap<Entry>(before);
    for (const node of candidates) {
      if (!this.staticFilters.every((f) => f.check(node, task, this.ctx))) continue;
      const l = this.load(node.ID);
      heap.push({ node, perService: l.perService.get(task.ServiceID) ?? 0, total: l.total });
    }
    g = { serviceId: task.ServiceID, candidates, heap };
    this.groups.set(key, g);
    return g;
  }
}

/** Tasks with equal keys get the same verdict from every filter on every node (a filter without `taskKey` groups nothing). */
function groupKey(task: Task, filters: readonly Filter[]): string {
  let key = `${task.ServiceID}\u0000${task.NodeID}`;
  for (const f of filters) key += `\u0000${f.taskKey ? f.taskKey(task) : `#${task.ID}`}`;
  return key;
}

export function addLoad(l: NodeLoad, t: Task): void {
  l.total++;
  l.perService.set(t.ServiceID, (l.perService.get(t.ServiceID) ?? 0) + 1);
  l.nanoCPUs += t.Spec.Resources?.Reservations?.NanoCPUs ?? 0;
  l.memoryBytes += t.Spec.Resources?.Reservations?.MemoryBytes ?? 0;
}
