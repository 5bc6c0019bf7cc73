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
import { BatchTooLargeError, type MemoryStore, type Tx } from '../../store/index.ts';
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
  /** Updates (and frames) waiting to be written before `enqueue` refuses more. Default 10 000, or the number of tasks in the store when more. */
  maxBacklog?: number;
  /**
   * Least time between two writes' starts, in real ms (default 50). The control-plane simulator
   * passes 0: a real timer fires after however many simulated steps the host's load allows, and a
   * seed would no longer replay the same run.
   */
  minGapMs?: number;
  /** Attempts per transaction. Default 10. */
  maxConflictRetries?: number;
}

type QueuedUpdate = StatusUpdate & { nodeId: string };

const TX_BATCH = 200;
/** Least time between the starts of two status writes. */
const MIN_GAP_MS = 50;

export class StatusWriter {
  readonly stats: StatusStats = { statusApplied: 0, statusDropped: 0 };
  #queue = new Map<string, QueuedUpdate>();
  #written: (() => void)[] = [];
  #flushing: Promise<void> | null = null;
  #scheduled = false;
  #lastRoundAt = -Infinity;
  #failedRounds = 0;

  constructor(private readonly store: MemoryStore, private readonly opts: StatusWriterOptions) {}

  /** Queue updates from `nodeId`'s worker. False (nothing queued) when the backlog is full. */
  enqueue(nodeId: string, updates: StatusUpdate[], onWritten: () => void): boolean {
    // Queued updates are keyed by task: a bound below the cluster's task count would close sessions
    // when many workers report at once (1 000 nodes each starting 100 tasks).
    const limit = this.opts.maxBacklog ?? Math.max(10_000, this.store.size('tasks'));
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

  /**
   * A round at the end of this turn, or once MIN_GAP_MS have passed since the last one began:
   * reports arriving meanwhile join it. Each status write wakes the orchestrator and the scheduler,
   * and a pass of theirs costs O(tasks): while 1 000 tasks start, a write per turn kept the daemon's
   * CPU busy with their passes, so the tasks' own start events waited (issue #18).
   */
  #schedule(): void {
    if (this.#scheduled || this.#flushing) return; // a round in progress schedules the next itself
    this.#scheduled = true;
    const go = () => {
      this.#scheduled = false;
      void this.#round();
    };
    const wait = this.#lastRoundAt + (this.opts.minGapMs ?? MIN_GAP_MS) - performance.now();
    // A real timer, not the injected clock's: a gap this short is a pace, never a deadline to test.
    if (wait > 0) setTimeout(go, wait);
    else setImmediate(go);
  }

  /** One write of everything queued now; later arrivals are scheduled after it. */
  #round(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#queue.size === 0 && this.#written.length === 0) return Promise.resolve();
    this.#lastRoundAt = performance.now();
    const batch = [...this.#queue.values()];
    const callbacks = this.#written;
    this.#queue = new Map();
    this.#written = [];
    // Proposed together: disjoint tasks cannot conflict, the log takes them in one stretch
    // (one fsync on a lone voter) and the stages watching the store see one turn of changes.
    const chunks: QueuedUpdate[][] = [];
    for (let i = 0; i < batch.length; i += TX_BATCH) chunks.push(batch.slice(i, i + TX_BATCH));
    // `finally` runs a turn later, never before #flushing is set.
    this.#flushing = Promise.all(chunks.map((c) => this.#write(c)))
      .then((ok) => {
        if (ok.every(Boolean)) {
          this.#failedRounds = 0;
          for (const cb of callbacks) cb();
          return;
        }
        // Not written (no quorum, a new leader on the way): nothing is acknowledged, and the updates
        // wait for the next round, unless a newer one for the same task came meanwhile.
        this.#failedRounds++;
        chunks.forEach((c, i) => {
          if (!ok[i]) for (const u of c) if (!this.#queue.has(u.taskId)) this.#queue.set(u.taskId, u);
        });
        this.#written.unshift(...callbacks);
      })
      .finally(() => {
        this.#flushing = null;
        if (this.#queue.size > 0 || this.#written.length > 0) this.#schedule();
      });
    return this.#flushing;
  }

  /**
   * Write everything queued, now (the dispatcher stopping): no pacing. Gives up after a few rounds
   * that could not write: what is left stays unacknowledged, and its worker reports it again to
   * the next dispatcher it registers with.
   */
  async flush(): Promise<void> {
    const failed = this.#failedRounds;
    while ((this.#flushing || this.#queue.size > 0 || this.#written.length > 0) && this.#failedRounds < failed + 3) {
      await (this.#flushing ?? this.#round());
    }
  }

  /** False when it could not be written (then nothing of it was). */
  async #write(updates: QueuedUpdate[]): Promise<boolean> {
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
        return true;
      } catch (err) {
        if ((err instanceof ConflictError || err instanceof NotFoundError) && i + 1 < attempts) continue;
        if (err instanceof BatchTooLargeError && updates.length > 1) {
          const half = Math.ceil(updates.length / 2);
          const first = await this.#write(updates.slice(0, half));
          const second = await this.#write(updates.slice(half));
          return first && second;
        }
        this.opts.log(`dispatcher: writing ${updates.length} task status updates failed (tried again later): ${errorMessage(err)}`);
        return false;
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
