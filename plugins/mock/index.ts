/**
 * The mock executor: tasks that "run" for `MockSpec.RunFor` and exit with `MockSpec.ExitCode`, or
 * fail to prepare/start with a given message. Time comes from an injectable clock so the simulation
 * drives it. The work lives in a registry keyed by task ID, outside any controller, so a fresh
 * controller (a "restarted daemon" in the same process) can `recover()` it.
 */
import type {
  Controller, Executor, ExecutorCapabilities, ExitStatus, Fingerprint, LogLine, LogOptions, TaskContext, TaskStats,
} from '../../src/executor/contract.ts';
import { PrepareError, StartError } from '../../src/executor/errors.ts';
import { selectLines } from '../../src/executor/logs.ts';
import type { MockSpec, Task, TaskSpec } from '../../src/types/index.ts';
import { realClock, type MockClock } from './clock.ts';

export { ManualClock, realClock, type MockClock } from './clock.ts';

/** Kept for callers that named it; every knob is now in the shared `MockSpec`. */
export type MockSpecExtras = MockSpec;

const NS_PER_MS = 1_000_000;
const MAX_LOG_LINES = 1_000;

type Phase = 'created' | 'prepared' | 'running' | 'exited';

/** One task's simulated work. */
export class MockRun {
  phase: Phase = 'created';
  exit?: ExitStatus;
  startedAt?: number;
  logs: LogLine[] = [];
  #listeners = new Set<() => void>();
  #cancelTimers: (() => void)[] = [];

  constructor(readonly taskId: string, readonly spec: MockSpecExtras, readonly clock: MockClock) {}

  log(line: string, stream: LogLine['stream'] = 'stdout'): void {
    this.logs.push({ stream, time: this.clock.now(), line });
    if (this.logs.length > MAX_LOG_LINES) this.logs.splice(0, this.logs.length - MAX_LOG_LINES);
    this.notify();
  }

  timer(ms: number, fn: () => void): void { this.#cancelTimers.push(this.clock.setTimer(ms, fn)); }

  end(exit: ExitStatus): void {
    if (this.phase === 'exited') return;
    for (const cancel of this.#cancelTimers.splice(0)) cancel();
    this.log(`exiting: ${exit.message}`);
    this.phase = 'exited';
    this.exit = exit;
    this.notify();
  }

  /** Resolves on the next change (log line or exit), or when `signal` aborts. */
  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => { this.#listeners.delete(done); signal?.removeEventListener('abort', done); resolve(); };
      this.#listeners.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private notify(): void { for (const l of [...this.#listeners]) l(); }
}

export interface MockExecutorOptions {
  clock?: MockClock;
  /** Shared between executor instances that stand for the same node across "restarts". */
  registry?: MockRegistry;
  /** Override what `fingerprint()` reports, e.g. an unhealthy runtime for scheduler tests. */
  fingerprint?: Partial<Fingerprint>;
}

const defaultRegistry = new Map<string, MockRun>();

export const mockCapabilities: ExecutorCapabilities = {
  recover: true, stats: true, logsFollow: true, signals: false, isolation: false, runAsUser: false,
  // Takes secrets (and does nothing with them), so the worker's handling of them can be tested.
  secrets: true,
};

export function createMockExecutor(opts: MockExecutorOptions = {}): Executor {
  const clock = opts.clock ?? realClock;
  const registry = opts.registry ?? defaultRegistry;
  return {
    name: 'mock',
    capabilities: mockCapabilities,
    async fingerprint() {
      return { healthy: true, attributes: { 'mock.version': '1' }, ...opts.fingerprint };
    },
    validate: validateMockSpec,
    controller(task: Task, ctx: TaskContext): Controller {
      return new MockController(task, ctx, clock, registry);
    },
  };
}

/**
 * The simulated work of one node, keyed by task ID. Give each simulated node its own; clearing it
 * stands for a host reboot (everything gone: `recover()` then finds nothing).
 */
export type MockRegistry = Map<string, MockRun>;
export function newMockRegistry(): MockRegistry { return new Map(); }

export function validateMockSpec(spec: TaskSpec): string | null {
  const m = spec.MockSpec as MockSpecExtras | undefined;
  if (!m) return null;
  const nonNegative = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
  if (!nonNegative(m.RunFor)) return 'MockSpec.RunFor: must be a non-negative number of nanoseconds';
  if (!nonNegative(m.StopGracePeriod)) return 'MockSpec.StopGracePeriod: must be a non-negative number of nanoseconds';
  if (m.ExitCode !== undefined && !(Number.isInteger(m.ExitCode) && m.ExitCode >= 0 && m.ExitCode <= 255)) {
    return 'MockSpec.ExitCode: must be an integer from 0 to 255';
  }
  for (const f of ['StartError', 'PrepareError'] as const) {
    if (m[f] !== undefined && typeof m[f] !== 'string') return `MockSpec.${f}: must be a string`;
  }
  return null;
}

class MockController implements Controller {
  readonly #spec: MockSpecExtras;

  constructor(
    readonly task: Task, readonly ctx: TaskContext,
    readonly clock: MockClock, readonly registry: Map<string, MockRun>,
  ) {
    this.#spec = (task.Spec.MockSpec ?? {}) as MockSpecExtras;
  }

  get #run(): MockRun | undefined { return this.registry.get(this.task.ID); }

  async prepare(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.#spec.PrepareError) throw new PrepareError(this.#spec.PrepareError);
    if (!this.#run) this.registry.set(this.task.ID, new MockRun(this.task.ID, this.#spec, this.clock));
    if (this.#run!.phase === 'created') this.#run!.phase = 'prepared';
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.#spec.StartError) throw new StartError(this.#spec.StartError);
    const run = this.#run;
    if (!run || run.phase === 'created') throw new StartError(`mock task ${this.task.ID}: start before prepare`);
    if (run.phase !== 'prepared') return; // already started: idempotent
    run.phase = 'running';
    run.startedAt = this.clock.now();
    run.log(`mock task ${this.task.ID} started`);
    if (this.#spec.RunFor !== undefined) {
      const ms = Math.floor(this.#spec.RunFor / NS_PER_MS);
      const code = this.#spec.ExitCode ?? 0;
      run.log(`running for ${ms} ms`);
      if (code !== 0) run.log(`will exit with code ${code}`, 'stderr');
      run.timer(ms, () => run.end({ exitCode: code, message: code === 0 ? 'exit code 0' : `exit code ${code}` }));
    } else {
      run.log('running until stopped');
    }
  }

  async wait(signal: AbortSignal): Promise<ExitStatus> {
    for (;;) {
      const run = this.#run;
      if (!run) throw new StartError(`mock task ${this.task.ID}: not started`);
      if (run.exit) return run.exit;
      signal.throwIfAborted();
      await run.changed(signal);
    }
  }

  async stop(graceMs: number): Promise<void> {
    const run = this.#run;
    if (!run || run.phase === 'exited') return;
    if (run.phase !== 'running') { run.end({ exitCode: 0, message: 'stopped before start' }); return; }
    if (!this.#spec.IgnoreStop) {
      run.end({ exitCode: 143, signal: 'SIGTERM', message: 'killed by SIGTERM' });
      return;
    }
    run.log('ignoring SIGTERM');
    run.timer(graceMs, () => run.end({ exitCode: 137, signal: 'SIGKILL', message: 'killed by SIGKILL' }));
    // Bounded by the grace timer above: the run always ends once it fires.
    while ((run.phase as Phase) !== 'exited') await run.changed();
  }

  async remove(): Promise<void> {
    await this.stop(0);
    this.registry.delete(this.task.ID);
  }

  async recover(): Promise<boolean> {
    const run = this.#run;
    return !!run && (run.phase === 'running' || run.phase === 'exited');
  }

  async *logs(opts: LogOptions = {}): AsyncIterable<LogLine> {
    const run = this.#run;
    if (!run) return;
    const first = selectLines(run.logs, opts);
    let last = first.at(-1) ?? null;
    let seen = run.logs.length;
    yield* first;
    while (opts.follow && !opts.signal?.aborted) {
      // Lines may have been trimmed from the front; find where we left off by identity.
      const idx = last ? run.logs.lastIndexOf(last) : -1;
      const from = idx >= 0 ? idx + 1 : Math.min(seen, run.logs.length);
      const fresh = run.logs.slice(from).filter((l) => opts.since === undefined || l.time >= opts.since);
      for (const l of fresh) { last = l; yield l; }
      seen = run.logs.length;
      if (run.phase === 'exited') return;
      await run.changed(opts.signal);
    }
  }

  async stats(): Promise<TaskStats> {
    const run = this.#run;
    if (!run?.startedAt || run.phase !== 'running') return {};
    return { cpuNanos: (this.clock.now() - run.startedAt) * NS_PER_MS, memoryBytes: 1 << 20 };
  }
}
