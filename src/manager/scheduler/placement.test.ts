import { describe, expect, test } from 'bun:test';
import { seededRandom } from '../../lib/rng.ts';
import type { Node, Task } from '../../types/index.ts';
import { makeNode, makeTask } from '../testkit.ts';
import { constraintCache, DEFAULT_FILTERS, type Filter, type FilterContext, type NodeLoad, Pipeline } from './filters.ts';
import { addLoad, Placement } from './placement.ts';
import { pickNode } from './scheduler.ts';

const GiB = 2 ** 30;

function loads(): (id: string) => NodeLoad {
  const m = new Map<string, NodeLoad>();
  return (id) => {
    let l = m.get(id);
    if (!l) m.set(id, (l = { total: 0, perService: new Map(), nanoCPUs: 0, memoryBytes: 0 }));
    return l;
  };
}

/** What the scheduler did before Placement: every filter on every node, then the best by spread. */
function reference(tasks: Task[], nodes: Node[], filters: readonly Filter[]): string[] {
  const load = loads();
  const ctx: FilterContext = { load, constraints: constraintCache() };
  const pipeline = new Pipeline(filters);
  const byId = new Map(nodes.map((n) => [n.ID, n]));
  return tasks.map((task) => {
    const candidates = task.NodeID ? [byId.get(task.NodeID)].filter((n): n is Node => !!n) : nodes;
    const { eligible, explanation } = pipeline.run(task, candidates, ctx);
    const best = pickNode(eligible, task, load);
    if (!best) return `none: ${explanation}`;
    addLoad(load(best.ID), task);
    return best.ID;
  });
}

function placed(tasks: Task[], nodes: Node[], filters: readonly Filter[]): string[] {
  const load = loads();
  const ctx: FilterContext = { load, constraints: constraintCache() };
  const p = new Placement(new Pipeline(filters), filters, nodes, new Map(nodes.map((n) => [n.ID, n])), ctx, load);
  return tasks.map((task) => {
    const r = p.place(task);
    return r.node ? r.node.ID : `none: ${r.explanation}`;
  });
}

function scenario(seed: number): { nodes: Node[]; tasks: Task[] } {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const nodes = Array.from({ length: 2 + Math.floor(rnd() * 12) }, (_, i) =>
    makeNode({
      id: `n${String(i).padStart(2, '0')}`,
      state: rnd() < 0.15 ? 'down' : 'ready',
      availability: rnd() < 0.1 ? 'drain' : 'active',
      labels: { zone: pick(['a', 'b']) },
      nanoCPUs: pick([1e9, 2e9, 4e9]),
      memoryBytes: pick([1, 2, 4]) * GiB,
      runtimes: rnd() < 0.1 ? [{ Name: 'mock', Healthy: false }] : [{ Name: 'mock', Healthy: true }],
    }));
  const specs = [
    { Runtime: 'mock' },
    { Runtime: 'mock', Resources: { Reservations: { NanoCPUs: 5e8 } } },
    { Runtime: 'mock', Resources: { Reservations: { MemoryBytes: GiB } } },
    { Runtime: 'mock', Placement: { Constraints: ['node.labels.zone==a'] } },
    { Runtime: 'process' },
  ];
  const tasks = Array.from({ length: 20 + Math.floor(rnd() * 60) }, (_, i) =>
    makeTask(pick(['s1', 's2', 's3']), {
      Slot: i + 1,
      state: 'pending',
      Spec: pick(specs),
      NodeID: rnd() < 0.1 ? pick([...nodes.map((n) => n.ID), 'gone']) : '',
    }));
  return { nodes, tasks };
}

describe('Placement', () => {
  test('places every task where checking every node would (seeded scenarios)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const { nodes, tasks } = scenario(seed);
      expect({ seed, placed: placed(tasks, nodes, DEFAULT_FILTERS) }).toEqual({ seed, placed: reference(tasks, nodes, DEFAULT_FILTERS) });
    }
  });

  test('a filter without taskKey still gets every task checked alone', () => {
    let checks = 0;
    const odd: Filter = { name: 'odd', check: (_n, t) => (checks++, t.Slot % 2 === 1), explain: (n) => `even slot on ${n} nodes` };
    const filters = [...DEFAULT_FILTERS, odd];
    const { nodes, tasks } = scenario(7);
    expect(placed(tasks, nodes, filters)).toEqual(reference(tasks, nodes, filters));
    expect(checks).toBeGreaterThan(0);
  });

  test('one group checks the load-free filters once per node, not once per task', () => {
    let checks = 0;
    const counting: Filter = { name: 'count', taskKey: () => '', check: () => (checks++, true), explain: () => '' };
    const nodes = Array.from({ length: 10 }, (_, i) => makeNode({ id: `n${i}` }));
    const tasks = Array.from({ length: 100 }, (_, i) => makeTask('s', { Slot: i + 1, state: 'pending' }));
    const out = placed(tasks, nodes, [...DEFAULT_FILTERS, counting]);
    expect(checks).toBe(10);
    // Spread: ten rounds over the ten nodes.
    expect(new Set(out.slice(0, 10)).size).toBe(10);
  });
});
