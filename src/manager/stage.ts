/**
 * What every manager stage shares: an injectable clock, and a reconcile loop driven by store events.
 *
 * A stage never calls another stage. It reads the store (a full pass on start, then a new pass after
 * any batch it cares about) and writes through store transactions. Passes are debounced: any number of
 * events while a pass runs cause exactly one more pass. A ConflictError (someone wrote what we read)
 * simply means "run again"; a bounded number of those in a row, or any other error, backs off on a
 * timer instead of spinning. A pass may leave its writes in flight (`inBackground`) when the stage
 * keeps in mind what they will change, so that the next pass need not wait for their commit.
 */
import { ConflictError, errorMessage, NotFoundError } from '../lib/errors.ts';
import { BatchTooLargeError, type ChangeEvent, type MemoryStore, type Tx } from '../store/index.ts';
import type { Task } from '../types/index.ts';

// ------------------------------------------------------------------ clock

export interface Timer {
  cancel(): void;
}

/** Time as the stages see it: milliseconds, and one-shot timers. Injected so tests never sleep. */
export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const h = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(h) };
  },
};

/** A clock that only moves when told to: `advance(ms)` fires the timers that fall due, in order. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  constructor(startMs = 1_700_000_000_000) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }

  /** Number of timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

export function isoAt(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

// ------------------------------------------------------------------ stage

/** A store event about one object (not the per-batch `commit`). */
export type ObjectEvent = Exclude<ChangeEvent, { kind: 'commit' }>;

export interface StageOptions {
  store: MemoryStore;
  clock?: Clock;
  /** Called with errors that are not conflicts (default: console.error). */
  onError?: (stage: string, err: unknown) => void;
}

/** Conflicts in a row before a stage backs off on a timer rather than retrying at once. */
const MAX_CONFLICTS_IN_A_ROW = 20;
const BACKOFF_MS = 100;

export function isRetryable(e: unknown): boolean {
  return e instanceof ConflictError || e instanceof NotFoundError;
}

/**
 * Base class of the stages: `start()` runs a pass over the snapshot and subscribes to the watch
 * stream; `stop()` unsubscribes, aborts, cancels timers and awaits the pass in flight and the writes
 * passes left in flight.
 */
export abstract class ReconcileStage {
  abstract readonly name: string;
  protected readonly store: MemoryStore;
  protected readonly clock: Clock;
  private readonly onError: (stage: string, err: unknown) => void;
  private unwatch: (() => void) | null = null;
  private abort = new AbortController();
  private dirty = false;
  private running: Promise<void> | null = null;
  private timers = new Set<Timer>();
  private started = false;
  /** Writes passes left in flight (`inBackground`). */
  private readonly writesInFlight = new Set<Promise<void>>();

  constructor(opts: StageOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.onError = opts.onError ?? ((stage, err) => console.error(`${stage}: ${errorMessage(err)}`));
  }

  /** One pass: read the store, write what is needed. Must be a no-op when nothing is to be done. */
  protected abstract reconcile(signal: AbortSignal): Promise<void>;

  /** Whether an event can change what a pass would do. */
  protected abstract interested(ev: ObjectEvent): boolean;

  /**
   * Awaited before each pass (none by default): a stage may wait there, bounded (`atMost`), for
   * writes already on their way to the log, so that one pass sees them all.
   */
  protected gather(_signal: AbortSignal): Promise<void> | undefined {
    return undefined;
  }

  /**
   * Resolves when `until` calls back (true), or after `ms` on the stage's clock or on the signal's
   * abort (false), whichever comes first. `until` subscribes its callback and returns how to
   * unsubscribe it.
   */
  protected atMost(until: (done: () => void) => () => void, ms: number, signal: AbortSignal): Promise<boolean> {
    // Aborted already (stop() came between two turns): no abort event will come to end the wait.
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let settled = false;
      let unsubscribe: (() => void) | undefined;
      const end = (called: boolean) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        signal.removeEventListener('abort', aborted);
        unsubscribe?.();
        resolve(called);
      };
      const aborted = () => end(false);
      const timer = this.clock.setTimer(ms, aborted);
      signal.addEventListener('abort', aborted, { once: true });
      unsubscribe = until(() => end(true));
      if (settled) unsubscribe();
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.abort = new AbortController();
    this.unwatch = this.store.watch((ev) => {
      if (ev.kind !== 'commit' && this.interested(ev)) this.kick();
    });
    this.kick();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unwatch?.();
    this.unwatch = null;
    this.abort.abort();
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    await this.running;
    await Promise.all([...this.writesInFlight]);
  }

  get isRunning(): boolean {
    return this.started;
  }

  /** Ask for another pass (debounced: at most one pass runs at a time, one more is queued). */
  protected kick(): void {
    if (!this.started) return;
    this.dirty = true;
    if (!this.running) this.running = this.run();
  }

  private async run(): Promise<void> {
    try {
      await this.loop();
    } finally {
      this.running = null;
      // An event that arrived after the loop's last check must not be lost.
      if (this.dirty && this.started) this.kick();
    }
  }

  /**
   * Writes a pass leaves in flight when it returns, so that the next pass can run while they commit
   * (the stage itself keeps in mind what they will change). Their failure is a failed pass's: a
   * conflict runs again at once, anything else is reported and tried again after a back-off.
   * stop() aborts them and waits for them.
   */
  protected inBackground(write: Promise<void>): void {
    const signal = this.abort.signal;
    const p: Promise<void> = write
      .catch((e) => {
        if (signal.aborted || !this.started) return;
        if (isRetryable(e)) return this.kick();
        this.onError(this.name, e);
        this.later(BACKOFF_MS, () => this.kick());
      })
      .finally(() => this.writesInFlight.delete(p));
    this.writesInFlight.add(p);
  }

  /** A timer owned by the stage: cancelled by stop(); `fn` runs only while the stage is started. */
  protected later(ms: number, fn: () => void): Timer {
    const t = this.clock.setTimer(ms, () => {
      this.timers.delete(t);
      if (this.started) fn();
    });
    this.timers.add(t);
    return {
      cancel: () => {
        t.cancel();
        this.timers.delete(t);
      },
    };
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    let conflicts = 0;
    while (this.dirty && !signal.aborted) {
      // Wait a turn of the event loop first: every batch applied meanwhile (batches apply on
      // microtasks) is then seen by one pass, rather than one pass per batch.
      await nextTurn();
      const gathering = this.gather(signal);
      if (gathering) await gathering;
      if (signal.aborted) break;
      this.dirty = false;
      try {
        await this.reconcile(signal);
        conflicts = 0;
      } catch (e) {
        if (signal.aborted) break;
        if (isRetryable(e) && ++conflicts < MAX_CONFLICTS_IN_A_ROW) {
          this.dirty = true;
          continue;
        }
        if (!isRetryable(e)) this.onError(this.name, e);
        this.dirty = false;
        this.later(BACKOFF_MS, () => this.kick());
        break;
      }
    }
  }
}

/** Deterministic JSON (sorted keys, no null/undefined members) for "did it change" tests. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined && x !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A plural for explanations: `1 node`, `2 nodes`. */
export function nodes(n: number): string {
  return n === 1 ? '1 node' : `${n} nodes`;
}

// ------------------------------------------------------------------ batched task writes

/** One task write: `change` gets the task as it is when the transaction is built; null skips it. */
export interface TaskChange {
  id: string;
  change(cur: Task): Task | null;
}

/** Batches of one `writeTasks` call in the log at once. */
const TASK_BATCHES_IN_FLIGHT = 16;

/**
 * Write many task changes in few transactions (`batchSize` each, fewer when a batch would not fit in
 * one log entry: see MAX_BATCH_BYTES). The batches are proposed together, up to
 * TASK_BATCHES_IN_FLIGHT at once, not one after another's commit: they hold disjoint tasks, so they
 * cannot conflict with each other, and they commit in one stretch of the log, which the dispatcher
 * turns into one frame per node rather than one per batch (issue #18). When a batch conflicts
 * (someone wrote one of its tasks in between), its changes are retried one task at a time, each
 * against a fresh read. Returns whether any single write still conflicted (the caller should run
 * again).
 */
export async function writeTasks(store: MemoryStore, changes: readonly TaskChange[], batchSize: number, signal?: AbortSignal): Promise<boolean> {
  const size = Math.max(1, batchSize);
  const chunks: TaskChange[][] = [];
  for (let i = 0; i < changes.length; i += size) chunks.push(changes.slice(i, i + size));
  let conflicted = false;
  await inLanes(chunks, TASK_BATCHES_IN_FLIGHT, async (chunk) => {
    if (await writeChunk(store, chunk, size, signal)) conflicted = true;
  }, signal);
  return conflicted;
}

/**
 * `fn` over `items`, at most `lanes` at once, started in order. After a failure (or an abort) no
 * more are started; once those started have settled, the first failure is thrown.
 */
export async function inLanes<T>(items: readonly T[], lanes: number, fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted && !failure) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
  if (failure) throw failure.err;
}

function applyChange(tx: Tx, c: TaskChange): void {
  const cur = tx.get('tasks', c.id);
  const next = cur && c.change(cur);
  if (next) tx.update('tasks', next);
}

/** One batch: halved while it does not fit in a log entry, one task at a time when it conflicts. */
async function writeChunk(store: MemoryStore, changes: readonly TaskChange[], batchSize: number, signal?: AbortSignal): Promise<boolean> {
  let conflicted = false;
  let size = Math.max(1, batchSize);
  for (let i = 0; i < changes.length && !signal?.aborted;) {
    const chunk = changes.slice(i, i + size);
    try {
      await store.update((tx) => chunk.forEach((c) => applyChange(tx, c)), signal);
    } catch (e) {
      if (e instanceof BatchTooLargeError && chunk.length > 1) {
        size = Math.ceil(chunk.length / 2);
        continue;
      }
      if (!isRetryable(e)) throw e;
      for (const c of chunk) {
        if (signal?.aborted) break;
        try {
          await store.update((tx) => applyChange(tx, c), signal);
        } catch (e2) {
          if (!isRetryable(e2)) throw e2;
          conflicted = true;
        }
      }
    }
    i += chunk.length;
  }
  return conflicted;
}

/**
 * Run `writes` in one transaction when they fit in one log entry, else in as few as fit, in order
 * (halving until each fits). A pass that fails halfway runs again from what the store then holds.
 */
export async function writeAll(store: MemoryStore, writes: readonly ((tx: Tx) => void)[], signal?: AbortSignal): Promise<void> {
  let size = Math.max(1, writes.length);
  for (let i = 0; i < writes.length && !signal?.aborted;) {
    const chunk = writes.slice(i, i + size);
    try {
      await store.update((tx) => { for (const w of chunk) w(tx); }, signal);
    } catch (e) {
      if (!(e instanceof BatchTooLargeError) || chunk.length === 1) throw e;
      size = Math.ceil(chunk.length / 2);
      continue;
    }
    i += chunk.length;
  }
}
