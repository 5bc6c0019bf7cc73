import { Allocator } from '../manager/allocator/index.ts';
import { Dispatcher } from '../manager/dispatcher/index.ts';
import { Orchestrator } from '../manager/orchestrator/index.ts';
import { JobOrchestrator } from '../manager/orchestrator/jobs/index.ts';
import { TaskReaper } from '../manager/reaper/index.ts';
import { Scheduler } from '../manager/scheduler/index.ts';
import type { Clock } from '../manager/stage.ts';
import type { MemoryStore } from '../store/index.ts';

export interface Stage {
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

export interface ManagerExtras {
  managers?: () => string[];
  stages?: Stage[];
  /** Time for every stage and the dispatcher (default the system clock); the simulation passes its own. */
  clock?: Clock;
  /** The dispatcher's heartbeat jitter source (default Math.random). */
  random?: () => number;
  /** Least real ms between two task status writes (default 50; the simulation passes 0). */
  statusMinGapMs?: number;
}

/**
 * The manager role: the pipeline's stages over one store. They never call each other; starting
 * them is all the wiring there is.
 */
export class Manager {
  readonly dispatcher: Dispatcher;
  private readonly stages: Stage[];

  constructor(readonly store: MemoryStore, log: (msg: string) => void, extra: ManagerExtras = {}) {
    const { clock, random } = extra;
    // The dispatcher reads the cluster's Spec.Dispatcher.HeartbeatPeriod itself, on every heartbeat.
    this.dispatcher = new Dispatcher({
      store, log, managers: extra.managers, random, statusMinGapMs: extra.statusMinGapMs,
      clock: clock && { now: () => clock.now(), setTimer: (ms, fn) => { const t = clock.setTimer(ms, fn); return () => t.cancel(); } },
    });
    const onError = (stage: string, err: unknown) => log(`${stage}: ${err instanceof Error ? err.message : String(err)}`);
    // The order stages are started in is the order their passes run when one commit wakes several
    // (each waits a turn, in the order it was woken). The scheduler goes first: its pass is what
    // the tasks of a burst wait for, and the others' passes then run while its writes commit
    // (issue #18: the orchestrator's pass over a burst's own new tasks, which finds nothing to do,
    // took 37 ms of the leader's loop ahead of it).
    this.stages = [
      new Scheduler({ store, onError, clock }),
      new Orchestrator({ store, onError, clock }),
      new JobOrchestrator({ store, onError, clock }),
      new Allocator({ store, onError, clock }),
      new TaskReaper({ store, onError, clock }),
      this.dispatcher,
      ...(extra.stages ?? []),
    ];
  }

  async start(): Promise<void> {
    for (const s of this.stages) await s.start();
  }

  async stop(): Promise<void> {
    for (const s of [...this.stages].reverse()) await s.stop();
  }
}
