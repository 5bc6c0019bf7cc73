/**
 * What must hold of the control plane, whatever the faults. Each check returns the first violation
 * it finds as a sentence, or null.
 *
 * Continuously (after every step of the simulation):
 *  - bounded replicas: a replicated service with R replicas never has more than R tasks the manager
 *    means to run (desired state running or less, not yet ended, on a node not down). Under a
 *    start-first update or rollback it may have up to R + P, P being that config's Parallelism
 *    (P = 0: every slot at once, so 2R). A stop-first rollout never adds one. When a rollout
 *    interrupts another (an update over an update, a rollback), the interrupted one's allowance adds
 *    to it: its successors already starting are not stopped. A slot never holds more than two. A global service has at
 *    most one such task per node (two under a start-first rollout).
 *  - one node per task: once a task has a node, it never moves to another; no two agents run it.
 *  - drained means empty: no task is ever placed on a node that is drained (or down) at that moment.
 * After healing (every fault ended, the leader stable), within a bound of simulated time:
 *  - converged: each replicated service has exactly R slots (not necessarily 1..R), each with one task running on a ready,
 *    active node (as the store says, and as that node's executor agrees); each global service runs
 *    exactly one task on every ready, active node; nothing runs on a drained node; every task an
 *    agent runs is one the store means to run there.
 */
import type { MemoryStore } from '../../../src/store/index.ts';
import { rolloutConfig } from '../../../src/manager/orchestrator/update/config.ts';
import { isTerminal, stateRank, type Node, type Service, type Task } from '../../../src/types/index.ts';
import type { SimAgent } from './agent.ts';

const RUNNING = stateRank('running');

export const meantToRun = (t: Task) => stateRank(t.DesiredState) <= RUNNING && !isTerminal(t.Status.State);

function replicasOf(s: Service): number | null {
  return s.Spec.Mode?.Replicated ? (s.Spec.Mode.Replicated.Replicas ?? 1) : null;
}

/**
 * The most tasks a replicated service may mean to run at once, per the rule above: R, plus the
 * start-first allowance of the rollout in force, plus that of the rollout it interrupted (an update
 * over an update, or a rollback, does not stop the successors the earlier rollout has starting; they
 * are outdated now and replaced in turn).
 */
export function replicaBound(s: Service, r: number): number {
  const extra = (c: ReturnType<typeof rolloutConfig>) => (c.startFirst ? (c.parallelism === 0 ? r : Math.min(r, c.parallelism)) : 0);
  const prev = s.PreviousSpec;
  const interrupted = prev
    ? Math.max(extra(rolloutConfig({ ...s, Spec: prev, UpdateStatus: undefined })), extra(rolloutConfig({ ...s, Spec: prev, UpdateStatus: { State: 'rollback_started' } })))
    : 0;
  return r + extra(rolloutConfig(s)) + interrupted;
}

export function checkReplicaBound(store: MemoryStore): string | null {
  const nodes = new Map(store.list('nodes').map((n) => [n.ID, n]));
  for (const s of store.list('services')) {
    const r = replicasOf(s);
    if (r === null) {
      const perNode = new Map<string, number>();
      for (const t of store.by('tasks', 'service', s.ID)) if (meantToRun(t) && t.NodeID) perNode.set(t.NodeID, (perNode.get(t.NodeID) ?? 0) + 1);
      const bound = replicaBound(s, 1);
      for (const [node, n] of perNode) if (n > bound) return `global service ${s.Spec.Name} has ${n} tasks meant to run on node ${node} (bound ${bound})`;
      continue;
    }
    const live = store.by('tasks', 'service', s.ID).filter((t) => meantToRun(t) && nodes.get(t.NodeID)?.Status.State !== 'down');
    const perSlot = new Map<number, number>();
    for (const t of live) perSlot.set(t.Slot, (perSlot.get(t.Slot) ?? 0) + 1);
    for (const [slot, n] of perSlot) if (n > 2) return `service ${s.Spec.Name} slot ${slot} has ${n} tasks meant to run`;
    const bound = replicaBound(s, r);
    if (live.length > bound) {
      return `service ${s.Spec.Name} (replicas ${r}, bound ${bound}, update ${s.UpdateStatus?.State ?? 'none'}) has ${live.length} tasks meant to run: ${live.map((t) => `slot ${t.Slot} ${t.Status.State}@${t.NodeID || '-'}`).join(', ')}`;
    }
  }
  return null;
}

/** Watches the store for tasks moving between nodes or placed on a drained or down node. */
export class PlacementWatch {
  violation: string | null = null;
  private readonly nodeOf = new Map<string, string>();
  private readonly unwatch: () => void;

  constructor(private readonly store: MemoryStore) {
    this.unwatch = store.watch((ev) => {
      if (ev.kind === 'commit' || ev.table !== 'tasks' || ev.kind === 'delete' || this.violation) return;
      const t = ev.object as Task;
      if (!t.NodeID) return;
      const was = this.nodeOf.get(t.ID);
      if (was && was !== t.NodeID) this.violation = `task ${t.ID} (${t.ServiceID} slot ${t.Slot}) moved from node ${was} to ${t.NodeID}`;
      if (was) return;
      this.nodeOf.set(t.ID, t.NodeID);
      const n = this.store.get('nodes', t.NodeID);
      if (meantToRun(t) && n && (n.Spec.Availability === 'drain' || n.Status.State === 'down')) {
        this.violation = `task ${t.ID} (${t.ServiceID} slot ${t.Slot}) placed on node ${n.ID}, which is ${n.Spec.Availability === 'drain' ? 'drained' : 'down'}`;
      }
    });
  }

  stop(): void { this.unwatch(); }
}

export function checkAgentsDisjoint(agents: readonly SimAgent[]): string | null {
  const on = new Map<string, string>();
  for (const a of agents) {
    for (const id of a.runningIds()) {
      const other = on.get(id);
      if (other) return `task ${id} runs on both ${other} and ${a.nodeId}`;
      on.set(id, a.nodeId);
    }
  }
  return null;
}

const usable = (n: Node | undefined) => !!n && n.Status.State === 'ready' && n.Spec.Availability === 'active';

/** Null when the cluster has converged; else what is still wrong. */
export function convergenceGap(store: MemoryStore, agents: readonly SimAgent[]): string | null {
  const nodes = store.list('nodes');
  const byId = new Map(nodes.map((n) => [n.ID, n]));
  const agentOf = new Map(agents.map((a) => [a.nodeId, a]));
  const runsOn = (t: Task) => t.Status.State === 'running' && agentOf.get(t.NodeID)?.tasks.get(t.ID)?.state === 'running';
  for (const s of store.list('services')) {
    const tasks = store.by('tasks', 'service', s.ID).filter(meantToRun);
    for (const t of tasks) {
      const n = byId.get(t.NodeID);
      if (t.NodeID && n?.Spec.Availability === 'drain') return `service ${s.Spec.Name}: task ${t.ID} meant to run on drained node ${n.ID}`;
    }
    const r = replicasOf(s);
    if (r !== null) {
      // Slots need not be 1..R: a scale-down removes what is not running first, whatever its number.
      const slots = [...new Set(tasks.map((t) => t.Slot))].sort((x, y) => x - y);
      if (slots.length !== r) return `service ${s.Spec.Name}: ${slots.length} slots with tasks meant to run (${slots.join(', ')}), want ${r} (update ${s.UpdateStatus?.State ?? 'none'})`;
      for (const slot of slots) {
        const inSlot = tasks.filter((t) => t.Slot === slot);
        if (inSlot.length !== 1) {
          const all = store.by('tasks', 'service', s.ID).filter((t) => t.Slot === slot);
          return `service ${s.Spec.Name} slot ${slot}: ${inSlot.length} tasks meant to run (update ${s.UpdateStatus?.State ?? 'none'}; slot history: ${all.map((t) => `${t.ID.slice(0, 6)} v${t.ServiceVersion} ${t.Status.State}/${t.DesiredState}@${t.NodeID || '-'}${t.SlotDone ? ' done' : ''}`).join(', ')})`;
        }
        const t = inSlot[0]!;
        if (!usable(byId.get(t.NodeID)) || !runsOn(t)) return `service ${s.Spec.Name} slot ${slot}: task ${t.ID} is ${t.Status.State} on ${t.NodeID || 'no node'}${t.Status.Err ? ` (${t.Status.Err})` : ''}`;
      }
    } else {
      for (const n of nodes) {
        const on = tasks.filter((t) => t.NodeID === n.ID);
        const want = usable(n) ? 1 : 0;
        if (on.length !== want || (want && !runsOn(on[0]!))) return `global service ${s.Spec.Name} on node ${n.ID} (${n.Status.State}, ${n.Spec.Availability}): ${on.length} tasks meant to run, want ${want} running`;
      }
    }
  }
  for (const a of agents) {
    for (const id of a.runningIds()) {
      const t = store.get('tasks', id);
      if (!t || !meantToRun(t) || t.NodeID !== a.nodeId) return `node ${a.nodeId} still runs task ${id}, which the store ${t ? `wants ${t.DesiredState}` : 'no longer has'}`;
    }
  }
  return null;
}
