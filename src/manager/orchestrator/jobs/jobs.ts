/**
 * The jobs orchestrator: a stage of its own beside the orchestrator (which leaves jobs alone). It
 * keeps each job's current iteration going until done (see plan.ts) and holds the restart delays
 * as clock timers.
 */
import type { Tx } from '../../../store/index.ts';
import { isoAt, type ObjectEvent, ReconcileStage, type StageOptions, type Timer, writeAll } from '../../stage.ts';
import { isJob } from './mode.ts';
import { type JobMemory, newJobMemory, planJob } from './plan.ts';
import { orchestratorInterested } from '../interest.ts';

export type JobOrchestratorOptions = StageOptions;

interface Remembered {
  memory: JobMemory;
  /** One timer per job: the earliest pending restart. */
  timer?: Timer;
  timerAt?: number;
}

/** Most restart times kept per slot: a windowed MaxAttempts beyond this is not tracked. */
const RESTART_HISTORY = 100;

export class JobOrchestrator extends ReconcileStage {
  readonly name = 'jobs';
  private remembered = new Map<string, Remembered>();

  override async stop(): Promise<void> {
    await super.stop();
    this.remembered.clear(); // its timers were the stage's, cancelled by stop()
  }

  protected interested(ev: ObjectEvent): boolean {
    return orchestratorInterested(ev);
  }

  protected async reconcile(signal: AbortSignal): Promise<void> {
    const nodes = new Map(this.store.list('nodes').map((n) => [n.ID, n]));
    for (const [id, r] of this.remembered) {
      const s = this.store.get('services', id);
      if (!s || !isJob(s)) {
        r.timer?.cancel();
        this.remembered.delete(id);
      }
    }
    for (const service of this.store.list('services')) {
      if (signal.aborted) return;
      if (!isJob(service)) continue;
      let r = this.remembered.get(service.ID);
      if (!r) this.remembered.set(service.ID, (r = { memory: newJobMemory() }));
      const now = this.clock.now();
      const plan = planJob({ service, tasks: this.store.by('tasks', 'service', service.ID), nodes, memory: r.memory, nowMs: now, nowIso: isoAt(this.clock) });
      if (plan.updates.size || plan.creates.length) {
        await writeAll(this.store, [
          ...[...plan.updates.values()].map((t) => (tx: Tx) => void tx.update('tasks', t)),
          ...plan.creates.map((t) => (tx: Tx) => void tx.create('tasks', t)),
        ], signal);
      }
      // Remembered only once written: a conflict runs the pass again from what the store holds.
      const iteration = service.JobStatus?.JobIteration?.Index ?? 0;
      const memory = r.memory.iteration === iteration ? r.memory : newJobMemory(iteration);
      memory.pending = plan.pending;
      for (const k of plan.restarted) {
        const list = memory.restarts.get(k) ?? [];
        list.push(now);
        if (list.length > RESTART_HISTORY) list.splice(0, list.length - RESTART_HISTORY);
        memory.restarts.set(k, list);
      }
      r.memory = memory;
      this.wakeForRestarts(r, now);
    }
  }

  private wakeForRestarts(r: Remembered, now: number): void {
    const due = Math.min(...[...r.memory.pending.values()].map((p) => p.notBefore).filter((t) => t > now));
    if (!Number.isFinite(due)) return;
    if (r.timer && r.timerAt !== undefined && r.timerAt <= due && r.timerAt > now) return;
    r.timer?.cancel();
    r.timerAt = due;
    r.timer = this.later(due - now, () => {
      r.timer = undefined;
      r.timerAt = undefined;
      this.kick();
    });
  }
}
