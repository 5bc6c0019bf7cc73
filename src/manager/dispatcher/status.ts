/**
 * Writing the task status workers report: latest per task, in few transactions, never backwards,
 * retried a bounded number of times when another stage's write conflicts. Callers get a callback
 * once their updates are written (or dropped), which the dispatcher turns into `tasks.ack`.
 *
 * Updates are coalesced: a write waits for the end of the event-loop turn (and for the write before
 * it), so everything workers reported meanwhile shares one transaction, one log entry and one
 * fsync. A task reported accepted, preparing, ready, starting and running within that wait is
 * written once, as running. Without the wait each report was written on its own: a worker's tasks
 * advance in separate turns (each on its own I/O), and with one voter a write commits within the
 * turn that makes it, so nothing ever queued behind an in-flight write (issue #18: ~5 fsyncs a task).
 */
import { ConflictError, errorMessage, NotFoundError } from '../../lib/errors.ts';
import type { MemoryStore, Tx } from '../../store/index.ts';
import { stateRank, type TaskStatus } from '../../types/index.ts';
import type { Clock } from './clock.ts';
import type { StatusUpdate } from './protocol.ts';

export interface StatusStats {
  statusApplied: number;
  /** Updates dropped because the task had already moved further (stale) or is not on that node. */
  statusDropped: number;
}

export interface StatusWriterOptions {
  clock: Clock;
  log: (msg: string) => void;
  /** Updates (and frames) waiting to be written before `enqueue` refuses more. Default 10 000. */
  maxBacklog?: number;
  /** Attempts per transaction. Default 10. */
  maxConflictRetries?: number;
}

type QueuedUpdate = StatusUpdate & { nodeId: string };

const TX_BATCH = 200;

export class StatusWriter {
  readonly stats: StatusStats = { statusApplied: 0, statusDropped: 0 };
  #queue = new Map<string, QueuedUpdate>();
  #written: (() => void)[] = [];
  #flushing: Promise<void> | null = null;
  #scheduled = false;

  constructor(private readonly store: MemoryStore, private readonly opts: StatusWriterOptions) {}

  /** Queue updates from `nodeId`'s worker. False (nothing queued) when the backlog is full. */
  enqueue(nodeId: string, updates: StatusUpdate[], onWritten: () => void): boolean {
    const limit = this.opts.maxBacklog ?? 10_000;
    if (this.#queue.size + updates.length > limit || this.#written.length >= limit) return false;
    for (const u of updates) {
      const prev = this.#queue.get(u.taskId);
      // Within the queue too, only the furthest state counts.
      if (prev && stateRank(prev.status.State) > stateRank(u.status.State)) continue;
      this.#queue.set(u.taskId, { ...u, nodeId });
    }
    this.#written.push(onWritten);
    this.#schedule();
    return true;
  }

  /** Flush at the end of this turn: reports arriving in the same turn (or the next few I/O callbacks) join. */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.flush();
    });
  }

  /** Write what is queued now; one flush at a time, later arrivals join the next round. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      try {
        while (this.#queue.size > 0 || this.#written.length > 0) {
          const batch = [...this.#queue.values()];
          const callbacks = this.#written;
          this.#queue = new Map();
          this.#written = [];
          for (let i = 0; i < batch.length; i += TX_BATCH) await this.#write(batch.slice(i, i + TX_BATCH));
          for (const cb of callbacks) cb();
        }
      } finally {
        this.#flushing = null;
      }
    })();
    return this.#flushing;
  }

  async #write(updates: QueuedUpdate[]): Promise<void> {
    const attempts = this.opts.maxConflictRetries ?? 10;
    for (let i = 0; ; i++) {
      let applied = 0;
      let dropped = 0;
      try {
        await this.store.update((tx) => {
          applied = 0;
          dropped = 0;
          for (const u of updates) {
            if (applyStatus(tx, u, this.opts.clock)) applied++;
            else dropped++;
          }
        });
        this.stats.statusApplied += applied;
        this.stats.statusDropped += dropped;
        return;
      } catch (err) {
        if ((err instanceof ConflictError || err instanceof NotFoundError) && i + 1 < attempts) continue;
        this.opts.log(`dispatcher: writing ${updates.length} task status updates failed: ${errorMessage(err)}`);
        return;
      }
    }
  }
}

/** True when the update was written; stale, foreign and no-op updates are dropped. */
function applyStatus(tx: Tx, u: QueuedUpdate, clock: Clock): boolean {
  const t = tx.get('tasks', u.taskId);
  if (!t || t.NodeID !== u.nodeId) return false;
  const cur = t.Status.State;
  if (stateRank(u.status.State) < stateRank(cur)) return false;
  // Only the fields a worker may set: nothing else it sends reaches the store.
  const { State, Message, Err, Timestamp, ContainerStatus: cs } = u.status;
  const status: TaskStatus = {
    State,
    Message: typeof Message === 'string' ? Message : '',
    Timestamp: typeof Timestamp === 'string' && Timestamp ? Timestamp : new Date(clock.now()).toISOString(),
    ...(typeof Err === 'string' && Err ? { Err } : {}),
    ...(cs && typeof cs === 'object' ? { ContainerStatus: pickContainerStatus(cs) } : {}),
  };
  if (u.status.State === cur && sameStatus(t.Status, status)) return false;
  tx.update('tasks', { ...t, Status: status });
  return true;
}

function pickContainerStatus(cs: NonNullable<TaskStatus['ContainerStatus']>): NonNullable<TaskStatus['ContainerStatus']> {
  const out: NonNullable<TaskStatus['ContainerStatus']> = {};
  if (typeof cs.ContainerID === 'string') out.ContainerID = cs.ContainerID.slice(0, 256);
  if (typeof cs.PID === 'number' && Number.isInteger(cs.PID)) out.PID = cs.PID;
  if (typeof cs.ExitCode === 'number' && Number.isInteger(cs.ExitCode)) out.ExitCode = cs.ExitCode;
  return out;
}

function sameStatus(a: TaskStatus, b: TaskStatus): boolean {
  return a.State === b.State && a.Message === b.Message && a.Err === b.Err
    && a.ContainerStatus?.ExitCode === b.ContainerStatus?.ExitCode;
}
