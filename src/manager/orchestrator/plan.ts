/**
 * What the orchestrator remembers of a service between passes (pending slots, restart times, the
 * rolling update's supervisor), and what one pass does to one service (Plan).
 */
import type { Service, Task, TaskState } from '../../types/index.ts';
import type { Timer } from '../stage.ts';
import type { UpdateSupervisor } from './update/index.ts';

/** A slot waiting for its next task. */
export interface PendingSlot {
  reason: 'restart' | 'update';
  slot: number;
  nodeId: string;
  /** restart: not before this clock time (ms). */
  notBefore: number;
  /** restart: RestartAttempts of the successor. */
  attempts: number;
  /** update: the task being stopped first. */
  waitFor: string;
  timer?: Timer;
}

export interface RollState {
  supervisor: UpdateSupervisor;
  /** Another pass is due at this clock time (ms): a batch delay or the end of a monitor period. */
  wakeAt?: number;
  timer?: Timer;
  timerAt?: number;
}

export interface ServiceMemory {
  pending: Map<string, PendingSlot>;
  /** Restart times (clock ms) per slot, for a windowed MaxAttempts. */
  restarts: Map<string, number[]>;
  roll: RollState;
}

/** What one pass does to one service: written in one transaction, then remembered. */
export class Plan {
  readonly updates = new Map<string, Task>();
  readonly creates: Task[] = [];
  readonly restarted: string[] = [];
  /** Ids of the service's tasks meant to run, as the pass saw them. */
  readonly live = new Set<string>();
  /** Slot key → the older task kept running until the slot's start-first successor runs. */
  readonly predecessors = new Map<string, Task>();
  pending: Map<string, PendingSlot>;
  roll: RollState;
  /** The service as it is to be written (UpdateStatus, a rollback's specs); absent: unchanged. */
  service?: Service;

  constructor(mem: ServiceMemory) {
    this.pending = new Map(mem.pending);
    this.roll = { ...mem.roll, supervisor: mem.roll.supervisor.clone() };
    delete this.roll.wakeAt;
  }

  desire(t: Task, state: TaskState): void {
    const cur = this.updates.get(t.ID) ?? t;
    if (cur.DesiredState !== state) this.updates.set(t.ID, { ...cur, DesiredState: state });
  }

  /** The policy will not restart this finished task: desired shutdown, and its slot is done. */
  finish(t: Task): void {
    const cur = this.updates.get(t.ID) ?? t;
    this.updates.set(t.ID, { ...cur, DesiredState: 'shutdown', SlotDone: true });
  }

  get empty(): boolean {
    return this.updates.size === 0 && this.creates.length === 0 && !this.service;
  }
}
