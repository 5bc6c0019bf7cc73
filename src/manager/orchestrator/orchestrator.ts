/**
 * The orchestrator: keeps each service's slots filled with tasks made from its current spec.
 *  - replicated: `Replicas` numbered slots; global: one slot per eligible node (Slot 0, NodeID set);
 *  - restart policy: a task that stops on its own while meant to run is marked desired `shutdown`
 *    and, when the policy allows, a successor is created in its slot after the delay (a clock
 *    timer: a program that exits at once restarts every `Delay`, never in a hot loop). When the
 *    policy refuses, the task is desired `shutdown` and marked `SlotDone`: its slot stays empty until
 *    the service changes (then it is refilled, as Docker reuses dead slots);
 *  - a task on a node that is down, drained or gone is shut down; a replicated slot gets a
 *    successor at once (the scheduler places it elsewhere, or leaves it pending);
 *  - a spec change rolls, as the update supervisor (update/) decides: Parallelism slots at a time, stop-first
 *    (or start-first: the old task runs until its successor does, and stays when it fails),
 *    failure actions, rollback; the supervisor's `UpdateStatus` and a rollback's spec swap are
 *    written with the pass's tasks;
 *  - a deleted service's tasks get DesiredState `remove` (the reaper deletes them once stopped).
 * Delays and batch state are kept in memory: a restarted orchestrator refills slots at once.
 */
import { isTerminal, stateRank, type Node, type Service, type Task } from '../../types/index.ts';
import { nodeSatisfies } from '../scheduler/constraints.ts';
import type { Tx } from '../../store/index.ts';
import { inLanes, isoAt, type ObjectEvent, ReconcileStage, type StageOptions, writeAll } from '../stage.ts';
import { restartPolicy, shouldRestart } from './restart.ts';
import { isJob } from './jobs/mode.ts';
import { isGlobal, isOutdated, meantToRun, newTask, olderFirst, replicasOf, slotKey, SpecKeys } from './slots.ts';
import { isPaused, isRolling, rolloutConfig, UpdateSupervisor } from './update/index.ts';
import { orchestratorInterested } from './interest.ts';
import { Plan, type PendingSlot, type ServiceMemory } from './plan.ts';

export type OrchestratorOptions = StageOptions;

const RUNNING = stateRank('running');
const ASSIGNED = stateRank('assigned');
/** Services whose plans are being written at once in a pass. */
const SERVICE_WRITES_IN_FLIGHT = 16;
/** Longest a pass waits for the next of the service creates on their way through this manager (gather). */
export const GATHER_CREATES_MS = 50;
/** Longest it waits for them in all, however steadily they keep arriving. */
export const GATHER_CREATES_MAX_MS = 250;

export class Orchestrator extends ReconcileStage {
  readonly name = 'orchestrator';
  private memory = new Map<string, ServiceMemory>();
  private readonly specKeys = new SpecKeys();

  constructor(opts: OrchestratorOptions) {
    super(opts);
  }

  override async stop(): Promise<void> {
    await super.stop();
    this.memory.clear(); // its timers were the stage's, cancelled by stop()
    this.dirtyServices = null;
    this.skipped.clear();
  }

  /**
   * Services to plan at the next pass: those whose tasks or service changed, or whose timer fired;
   * null plans every service (at start, after a node changed, after a failed pass). A service's plan
   * reads only its own tasks, the nodes and its own memory, so the others would plan nothing new.
   */
  private dirtyServices: Set<string> | null = null;

  /**
   * Services whose plan a pass left in the log, not yet applied: a pass meanwhile does not plan them
   * (it would plan the same tasks again), and they are planned again once applied. The pass does not
   * wait for its writes, so services created while they commit are planned at once rather than a
   * commit later, and a burst of creates reaches the scheduler together (issue #18).
   */
  private readonly writing = new Set<string>();
  /** Services a pass skipped while they were being written: planned again once settled. */
  private readonly skipped = new Set<string>();

  /**
   * A pass first waits for the service creates on their way through this manager (in its log, or
   * announced by an API call still validating one): creates posted together reach the store a few
   * ms apart, in two or three commits, and a pass that planned the first alone sent the rest a whole
   * pipeline later, a second wave of frames to every node (issue #18, docs/scale.md stop 31). While
   * it waits the loop is free to commit them. It waits as long as they keep coming in, each within
   * GATHER_CREATES_MS of the last, and GATHER_CREATES_MAX_MS in all: a single bound of 50 ms from
   * the start left ten creates answered over 235 ms in three waves (stop 32).
   */
  protected override gather(signal: AbortSignal): Promise<void> | undefined {
    if (this.store.proposing('services', 'create') === 0) return undefined;
    return this.gatherCreates(signal);
  }

  private async gatherCreates(signal: AbortSignal): Promise<void> {
    const until = this.clock.now() + GATHER_CREATES_MAX_MS;
    while (this.store.proposing('services', 'create') > 0) {
      const left = until - this.clock.now();
      if (left <= 0) return;
      const next = await this.atMost((done) => this.store.whenFewer('services', 'create', done), Math.min(GATHER_CREATES_MS, left), signal);
      if (!next) return; // none came in within the bound, or the stage is stopping
    }
  }

  protected interested(ev: ObjectEvent): boolean {
    if (!orchestratorInterested(ev, this.rolling)) return false;
    if (ev.table === 'tasks') this.dirtyServices?.add((ev.object as Task).ServiceID);
    else if (ev.table === 'services') this.dirtyServices?.add(ev.object.ID);
    else this.dirtyServices = null;
    return true;
  }

  /**
   * A rolling update or rollback of the service is under way, or paused: it watches its tasks' every
   * step. A paused one still has start-first predecessors waiting for their successors to run.
   */
  private readonly rolling = (serviceId: string): boolean => {
    const state = this.store.get('services', serviceId)?.UpdateStatus?.State;
    return isRolling(state) || isPaused(state);
  };

  private kickService(id: string): void {
    this.dirtyServices?.add(id);
    this.kick();
  }

  protected async reconcile(signal: AbortSignal): Promise<void> {
    const todo = this.dirtyServices;
    this.dirtyServices = new Set();
    try {
      await this.removeOrphans(todo, signal);
      const nodes = new Map(this.store.list('nodes').map((n) => [n.ID, n]));
      for (const id of this.memory.keys()) if (!this.store.get('services', id) && !this.writing.has(id)) this.forget(id);
      // Every service is planned first, then the plans are written together (disjoint writes, in
      // lanes): services created together commit in one stretch of the log, and the scheduler
      // places them in one pass, so a node given a task of each gets them in one frame (issue #18).
      const writes: { service: Service; mem: ServiceMemory; plan: Plan }[] = [];
      for (const service of this.store.list('services')) {
        if (signal.aborted) return;
        if (todo && !todo.has(service.ID)) continue;
        if (isJob(service)) continue; // the jobs stage's (jobs/)
        if (this.writing.has(service.ID)) {
          this.skipped.add(service.ID);
          continue;
        }
        const mem = this.memoryOf(service.ID);
        const plan = this.plan(service, mem, nodes);
        if (plan.empty) this.remember(service.ID, mem, plan);
        else writes.push({ service, mem, plan });
      }
      this.specKeys.sweep();
      if (writes.length === 0) return;
      for (const w of writes) this.writing.add(w.service.ID);
      this.inBackground(this.write(writes, signal));
    } catch (e) {
      this.dirtyServices = null; // the pass that runs again (or after a back-off) plans everything
      throw e;
    }
  }

  /** A pass's plans, in lanes; each remembered once applied. A failure plans every service again. */
  private async write(writes: readonly { service: Service; mem: ServiceMemory; plan: Plan }[], signal: AbortSignal): Promise<void> {
    try {
      await inLanes(writes, SERVICE_WRITES_IN_FLIGHT, async ({ service, mem, plan }) => {
        try {
          // One transaction unless it would not fit in one log entry (thousands of replicas).
          await writeAll(this.store, [
            ...(plan.service ? [(tx: Tx) => void tx.update('services', plan.service!)] : []),
            ...[...plan.updates.values()].map((t) => (tx: Tx) => void tx.update('tasks', t)),
            ...plan.creates.map((t) => (tx: Tx) => void tx.create('tasks', t)),
          ], signal);
          if (!signal.aborted) this.remember(service.ID, mem, plan);
        } finally {
          this.writing.delete(service.ID);
          if (this.skipped.delete(service.ID)) this.kickService(service.ID);
        }
      }, signal);
    } catch (e) {
      this.dirtyServices = null;
      throw e;
    } finally {
      // A plan never started (a lane failed first, or the stage stopped) is not being written.
      for (const w of writes) {
        this.writing.delete(w.service.ID);
        if (this.skipped.delete(w.service.ID)) this.kickService(w.service.ID);
      }
    }
  }

  /** Tasks of services that no longer exist (of the services in `todo`; null: of all): desired `remove`. */
  private async removeOrphans(todo: ReadonlySet<string> | null, signal: AbortSignal): Promise<void> {
    const gone = (t: Task) => stateRank(t.DesiredState) < stateRank('remove') && !this.store.get('services', t.ServiceID);
    const orphans = todo
      ? [...todo].filter((id) => !this.store.get('services', id)).flatMap((id) => this.store.by('tasks', 'service', id).filter(gone))
      : this.store.list('tasks').filter(gone);
    for (let i = 0; i < orphans.length && !signal.aborted; i += 200) {
      const chunk = orphans.slice(i, i + 200);
      await this.store.update((tx) => chunk.forEach((t) => tx.update('tasks', { ...t, DesiredState: 'remove' })), signal);
    }
  }

  private memoryOf(id: string): ServiceMemory {
    let m = this.memory.get(id);
    if (!m) this.memory.set(id, (m = { pending: new Map(), restarts: new Map(), roll: { supervisor: new UpdateSupervisor() } }));
    return m;
  }

  private forget(id: string): void {
    const m = this.memory.get(id);
    if (!m) return;
    for (const p of m.pending.values()) p.timer?.cancel();
    m.roll.timer?.cancel();
    this.memory.delete(id);
  }

  /** After the plan's writes are committed: keep its pending slots and set the timers they need. */
  private remember(serviceId: string, mem: ServiceMemory, plan: Plan): void {
    const now = this.clock.now();
    for (const [k, p] of mem.pending) if (plan.pending.get(k) !== p) p.timer?.cancel();
    for (const p of plan.pending.values()) {
      if (p.reason === 'restart' && !p.timer && p.notBefore > now) p.timer = this.later(p.notBefore - now, () => this.kickService(serviceId));
    }
    mem.pending = plan.pending;
    for (const k of plan.restarted) {
      const list = mem.restarts.get(k) ?? [];
      list.push(now);
      if (list.length > 100) list.splice(0, list.length - 100); // bounded: MaxAttempts beyond this is not tracked
      mem.restarts.set(k, list);
    }
    const roll = plan.roll;
    if (roll.wakeAt !== undefined && roll.wakeAt > now && roll.timerAt !== roll.wakeAt) {
      roll.timer?.cancel();
      roll.timer = this.later(roll.wakeAt - now, () => this.kickService(serviceId));
      roll.timerAt = roll.wakeAt;
    }
    mem.roll = roll;
  }

  // ------------------------------------------------------------------ planning

  private plan(service: Service, mem: ServiceMemory, nodes: Map<string, Node>): Plan {
    const plan = new Plan(mem);
    const now = this.clock.now();
    const nowIso = isoAt(this.clock);
    const global = isGlobal(service);
    const startFirst = rolloutConfig(service).startFirst;
    const constraints = service.Spec.TaskTemplate.Placement?.Constraints;
    const nodeUsable = (id: string) => {
      const n = nodes.get(id);
      return !!n && n.Status?.State !== 'down' && n.Spec?.Availability !== 'drain';
    };
    // Global: a node can keep its task unless down, drained, gone or no longer matching; it gets a
    // new one only when ready and active as well.
    const keepsGlobal = (id: string) => nodeUsable(id) && nodeSatisfies(constraints, nodes.get(id)!);
    const takesGlobal = (id: string) => {
      const n = nodes.get(id);
      return !!n && n.Status?.State === 'ready' && n.Spec?.Availability === 'active' && nodeSatisfies(constraints, n);
    };

    // Group the service's tasks by slot; tasks that do not fit the mode are shut down.
    const slots = new Map<string, Task[]>();
    for (const t of this.store.by('tasks', 'service', service.ID)) {
      if (global !== (t.Slot === 0)) {
        if (meantToRun(t)) plan.desire(t, 'shutdown');
        continue;
      }
      const k = slotKey(t);
      slots.get(k)?.push(t) ?? slots.set(k, [t]);
    }

    const current = new Map<string, Task>();
    const finished = new Set<string>();
    for (const [k, tasks] of slots) {
      const live = tasks.filter(meantToRun).sort(olderFirst);
      const cur = live.pop();
      // Older tasks still meant to run: shut down, except under a start-first update, where the
      // previous task keeps running until its successor does (and on when the successor fails).
      // Only one that runs is kept: a successor superseded by a newer update before it ran serves
      // nobody, and keeping it would let the slot hold three tasks (more than Parallelism extra).
      const successorStarting = startFirst && !!cur && cur.Status.State !== 'running';
      // Never one on a node that is down or drained, which must empty whatever its successor does.
      const kept = successorStarting
        ? live.findLast((t) => t.Status.State === 'running' && (global ? keepsGlobal(t.NodeID) : nodeUsable(t.NodeID)))
        : undefined;
      for (const extra of live) {
        if (extra === kept) plan.live.add(extra.ID);
        else plan.desire(extra, 'shutdown');
      }
      if (kept) plan.predecessors.set(k, kept);
      if (cur) {
        current.set(k, cur);
        plan.live.add(cur.ID);
      } else if (!global) {
        // A slot the restart policy finished stays empty until the task template changes (Docker
        // refills such "dead slots" when the service is updated). Not the object version: the
        // allocator rewrites the service's Endpoint, which must not refill the slot.
        const newest = [...tasks].sort(olderFirst).pop();
        if (newest?.SlotDone && !isOutdated(newest, service, this.specKeys.of, this.specKeys.template)) finished.add(k);
      }
    }

    const replace = (k: string, old: Task, attempts: number) => {
      const t = newTask(service, old.Slot, global ? old.NodeID : '', nowIso, attempts);
      plan.creates.push(t);
      current.set(k, t);
    };

    for (const [k, cur] of [...current]) {
      // On a node that is down, drained or gone.
      if (cur.NodeID && !isTerminal(cur.Status.State) && (global ? !keepsGlobal(cur.NodeID) : !nodeUsable(cur.NodeID))) {
        plan.desire(cur, 'shutdown');
        current.delete(k);
        plan.pending.delete(k);
        if (!global) replace(k, cur, cur.RestartAttempts ?? 0);
        continue;
      }
      // Stopped on its own while meant to run: the restart policy decides.
      if (isTerminal(cur.Status.State)) {
        const policy = restartPolicy(cur.Spec);
        if (!shouldRestart(cur, policy, mem.restarts.get(k) ?? [], now)) {
          plan.finish(cur);
          continue;
        }
        plan.desire(cur, 'shutdown');
        current.delete(k);
        plan.restarted.push(k);
        plan.pending.set(k, { reason: 'restart', slot: cur.Slot, nodeId: global ? cur.NodeID : '', notBefore: now + policy.delayMs, attempts: (cur.RestartAttempts ?? 0) + 1, waitFor: '' });
      }
    }

    // Which slots the service should have.
    if (global) {
      for (const [k, p] of plan.pending) if (!current.has(k) && !takesGlobal(p.nodeId)) plan.pending.delete(k);
      for (const id of [...nodes.keys()].sort()) {
        const k = slotKey({ Slot: 0, NodeID: id });
        if (!current.has(k) && !plan.pending.has(k) && takesGlobal(id)) {
          const t = newTask(service, 0, id, nowIso);
          plan.creates.push(t);
          current.set(k, t);
        }
      }
    } else {
      this.scale(service, plan, current, finished, nowIso);
    }

    // Pending slots whose time has come.
    for (const [k, p] of [...plan.pending]) {
      if (current.has(k)) {
        plan.pending.delete(k);
        continue;
      }
      const ready = p.reason === 'restart' ? now >= p.notBefore : this.stopped(p.waitFor, nodeUsable);
      if (!ready) continue;
      plan.pending.delete(k);
      const t = newTask(service, p.slot, p.nodeId, nowIso, p.reason === 'restart' ? p.attempts : 0);
      plan.creates.push(t);
      current.set(k, t);
    }

    this.roll(service, [...slots.values()].flat(), plan, current, now, nodeUsable);
    return plan;
  }

  /** Replicated: exactly `Replicas` slots occupied (by a current task or a pending successor). */
  private scale(service: Service, plan: Plan, current: Map<string, Task>, finished: Set<string>, nowIso: string): void {
    const want = replicasOf(service);
    const occupied = new Set([...current.keys(), ...plan.pending.keys(), ...finished]);
    if (occupied.size > want) {
      // Remove what is not running first, then the highest slots.
      const rank = (k: string) => {
        const t = current.get(k);
        if (!t) return 0; // only a pending successor
        return t.Status.State === 'running' ? 2 : 1;
      };
      const victims = [...occupied].sort((a, b) => rank(a) - rank(b) || Number(b) - Number(a)).slice(0, occupied.size - want);
      for (const k of victims) {
        const t = current.get(k);
        if (t) plan.desire(t, 'shutdown');
        // The slot goes: its start-first predecessor too, or the next pass would count the slot again.
        const p = plan.predecessors.get(k);
        if (p) {
          plan.desire(p, 'shutdown');
          plan.live.delete(p.ID);
          plan.predecessors.delete(k);
        }
        current.delete(k);
        plan.pending.delete(k);
        occupied.delete(k);
      }
    }
    for (let slot = 1; occupied.size < want; slot++) {
      const k = String(slot);
      if (occupied.has(k)) continue;
      const t = newTask(service, slot, '', nowIso);
      plan.creates.push(t);
      current.set(k, t);
      occupied.add(k);
    }
  }

  /** The task being replaced has stopped (or never reached a node, or its node is gone). */
  private stopped(taskId: string, nodeUsable: (id: string) => boolean): boolean {
    const t = this.store.get('tasks', taskId);
    return !t || this.stoppedTask(t, nodeUsable);
  }

  /** Rolling update: the supervisor picks the slots to replace now; they are replaced here. */
  private roll(service: Service, tasks: Task[], plan: Plan, current: Map<string, Task>, now: number, nodeUsable: (id: string) => boolean): void {
    const created = new Set(plan.creates.map((t) => t.ID));
    const d = plan.roll.supervisor.step({
      service, tasks, current, created, now, nowIso: isoAt(this.clock),
      waitingToStop: [...plan.pending.values()].filter((p) => p.reason === 'update').length,
      slots: new Set([...current.keys(), ...plan.pending.keys()]).size,
      isOutdated: (t) => isOutdated(t, service, this.specKeys.of, this.specKeys.template),
    });
    if (d.wakeAt !== undefined) plan.roll.wakeAt = d.wakeAt;
    if (d.rollback && service.PreviousSpec) {
      const spec = service.PreviousSpec;
      plan.service = { ...service, Spec: spec, PreviousSpec: service.Spec, UpdateStatus: d.status, Endpoint: { ...service.Endpoint, Spec: spec.EndpointSpec ?? { Mode: 'vip' } } };
      return; // the next pass rolls the previous spec out
    }
    if (d.status) plan.service = { ...service, UpdateStatus: d.status };
    for (const [k, t] of d.replace) {
      const next = () => {
        const n = newTask(service, t.Slot, t.Slot > 0 ? '' : t.NodeID, isoAt(this.clock));
        plan.creates.push(n);
        current.set(k, n);
      };
      if (d.config.startFirst && !this.stoppedTask(t, nodeUsable)) {
        next(); // the old task is shut down once its successor runs (see plan())
        continue;
      }
      plan.desire(t, 'shutdown');
      current.delete(k);
      if (this.stoppedTask(t, nodeUsable)) next();
      else plan.pending.set(k, { reason: 'update', slot: t.Slot, nodeId: t.Slot > 0 ? '' : t.NodeID, notBefore: 0, attempts: 0, waitFor: t.ID });
    }
  }

  private stoppedTask(t: Task, nodeUsable: (id: string) => boolean): boolean {
    const s = stateRank(t.Status.State);
    return s > RUNNING || s < ASSIGNED || !t.NodeID || !nodeUsable(t.NodeID);
  }
}
