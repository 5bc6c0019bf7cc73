import { Allocator } from '../manager/allocator/index.ts';
import { Dispatcher } from '../manager/dispatcher/index.ts';
import { Orchestrator } from '../manager/orchestrator/index.ts';
import { JobOrchestrator } from '../manager/orchestrator/jobs/index.ts';
import { TaskReaper } from '../manager/reaper/index.ts';
import { Scheduler } from '../manager/scheduler/index.ts';
import type { MemoryStore } from '../store/index.ts';

export interface Stage {
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

/**
 * The manager role: the pipeline's stages over one store. They never call each other; starting
 * them is all the wiring there is.
 */
export class Manager {
  readonly dispatcher: Dispatcher;
  private readonly stages: Stage[];

  constructor(readonly store: MemoryStore, log: (msg: string) => void, extra: { managers?: () => string[]; stages?: Stage[] } = {}) {
    // The dispatcher reads the cluster's Spec.Dispatcher.HeartbeatPeriod itself, on every heartbeat.
    this.dispatcher = new Dispatcher({ store, log, managers: extra.managers });
    const onError = (stage: string, err: unknown) => log(`${stage}: ${err instanceof Error ? err.message : String(err)}`);
    this.stages = [
      new Orchestrator({ store, onError }),
      new JobOrchestrator({ store, onError }),
      new Allocator({ store, onError }),
      new Scheduler({ store, onError }),
      new TaskReaper({ store, onError }),
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
