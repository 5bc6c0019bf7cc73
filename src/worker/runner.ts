/**
 * One task on this worker (swarmkit's agent task manager): gets the executor for the task's runtime,
 * makes its controller, and drives it through the executor driver from the task's observed state
 * toward its desired state, reporting every status change. The driver owns the transitions; the
 * runner owns the task's directory, recovery after a daemon restart, and the end of the task's life.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Controller, LogLine, LogOptions, TaskFiles, TaskNetwork } from '../executor/contract.ts';
import type { EndpointPort } from '../manager/dispatcher/protocol.ts';
import { type StepResult, TaskDriver, toTaskStatus } from '../executor/driver.ts';
import { commandProbe, HealthGate, healthTiming, hostHealthcheck } from '../executor/health.ts';
import { errorMessage } from '../lib/errors.ts';
import { executorStartLatency } from '../lib/metrics.ts';
import {
  isTerminal, runtimeOf, stateRank, stopGraceMs, type Task, type TaskState, type TaskStatus, taskFileRefs,
} from '../types/index.ts';
import type { Executor } from '../executor/contract.ts';
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import type { StartSlots } from './start-slots.ts';

export const LOST_WHILE_DOWN = 'task process lost while the daemon was down';

/** How long past its stop grace period a shutdown may take before the runner stops waiting. */
const SHUTDOWN_MARGIN_MS = 5_000;

/** The host's overlay plumbing as the runner uses it (`NetworkAgent`). */
export interface TaskNetworking {
  /** Set up the task's networks before its controller is made; throws naming what is missing. */
  prepare(task: Task, isolation: boolean): Promise<TaskNetwork | undefined>;
  /**
   * The task runs with this main process (its namespace exists): a task with a namespace of its own
   * gets its VIP rules there. Idempotent: called as soon as the executor knows the pid
   * (`TaskNetwork.started`) and again when the task reports running.
   */
  started(taskId: string, pid: number | undefined): Promise<void>;
  /** The task left this node: release its namespace and interfaces. */
  release(taskId: string): Promise<void>;
}

export interface RunnerDeps {
  /** For tasks on the host's network: where the services are (see serviceEnv). */
  serviceEnv?: () => Record<string, string>;
  /** Secrets and configs of tasks, on a tmpfs per task (absent: tasks using them are refused). */
  files?: { prepare(task: Task): Promise<TaskFiles | undefined>; release(taskId: string): Promise<void> };
  /** Overlay networks of tasks (absent: tasks with networks are refused). */
  network?: TaskNetworking;
  /** This host's mesh address, given to the task as SHOAL_NODE_ADDR. */
  nodeAddr?: string;
  /** The executors of this node (`ExecutorCatalog`); `get` throws for an unknown runtime. */
  catalog: { get(name: string): Executor };
  dataDir: string;
  report(taskId: string, status: TaskStatus): void;
  log?(msg: string): void;
  /** Time for status timestamps and for the bounds on waiting; default the system clock. */
  clock?: Clock;
  /** The node's bound on tasks preparing or starting at once (none: unbounded). */
  startSlots?: StartSlots;
}

export class TaskRunner {
  #task: Task;
  #status: TaskStatus;
  #reported = false;
  /** performance.now() when the task began preparing: the executor start latency runs to "running". */
  #preparingAt: number | undefined;
  #ctl: Controller | null = null;
  #driver: TaskDriver | null = null;
  #detach = new AbortController();
  #done: Promise<void> | null = null;
  readonly taskDir: string;

  constructor(task: Task, private readonly deps: RunnerDeps) {
    this.#task = task;
    this.#status = task.Status;
    this.taskDir = join(deps.dataDir, 'tasks', task.ID);
  }

  get id(): string { return this.#task.ID; }
  get task(): Task { return this.#task; }
  /** The latest observed status (what was reported last, or what the manager said at first). */
  get status(): TaskStatus { return this.#status; }
  /** True once this runner reported something of its own. */
  get reported(): boolean { return this.#reported; }
  get desired(): TaskState { return this.#driver?.desired ?? this.#task.DesiredState; }
  /** Resolves when the runner has nothing left to drive (terminal, failed to start, or detached). */
  get done(): Promise<void> { return this.#done ?? Promise.resolve(); }

  start(): void {
    this.#done ??= this.#run().catch((err) => {
      this.deps.log?.(`task ${this.id}: runner failed: ${errorMessage(err)}`);
      if (!isTerminal(this.#status.State) && !this.#detach.signal.aborted) {
        this.#report({ state: 'failed', message: `worker error: ${errorMessage(err)}`, err: errorMessage(err) });
      }
    });
  }

  /** A newer version of the assignment: only the desired state matters to a running task. */
  update(task: Task): void {
    if (task.ID !== this.id) return;
    if (stateRank(task.DesiredState) >= stateRank(this.#task.DesiredState)) this.#task = { ...task, Status: this.#task.Status };
    this.#driver?.setDesired(task.DesiredState);
  }

  /** Stop the task (its stop grace period, then kill) and wait until it is terminal, bounded. */
  async shutdown(): Promise<void> {
    if (stateRank(this.#task.DesiredState) < stateRank('shutdown')) this.update({ ...this.#task, DesiredState: 'shutdown' });
    await this.#bounded(stopGraceMs(this.#task.Spec) + SHUTDOWN_MARGIN_MS);
  }

  /** Stop driving the task and leave its work running (daemon stop with `keepTasks`). */
  async detach(): Promise<void> {
    this.#detach.abort();
    await this.#bounded(SHUTDOWN_MARGIN_MS);
  }

  /** The task left this node's assignments: stop it if needed, then release everything it holds. */
  async remove(): Promise<void> {
    if (!isTerminal(this.#status.State)) await this.shutdown();
    this.#detach.abort();
    await this.#bounded(SHUTDOWN_MARGIN_MS);
    try {
      await this.#ctl?.remove();
    } catch (err) {
      this.deps.log?.(`task ${this.id}: remove failed: ${errorMessage(err)}`);
    }
    await this.deps.files?.release(this.id);
    await this.deps.network?.release(this.id).catch((err) => this.deps.log?.(`task ${this.id}: network release failed: ${errorMessage(err)}`));
    await rm(this.taskDir, { recursive: true, force: true }).catch(() => {});
  }

  /** The task's own output, from its controller; nothing when it never got one. */
  async *logs(opts: LogOptions = {}): AsyncIterable<LogLine> {
    if (!this.#ctl) return;
    yield* this.#ctl.logs(opts);
  }

  async #bounded(ms: number): Promise<void> {
    let cancel = () => {};
    await Promise.race([this.done, new Promise<void>((r) => { cancel = (this.deps.clock ?? systemClock).setTimer(ms, r); })]);
    cancel();
  }

  #report(r: StepResult): void {
    if (stateRank(r.state) < stateRank(this.#status.State)) return; // the driver refuses this too
    const status = toTaskStatus(r, new Date((this.deps.clock ?? systemClock).now()));
    // What is known of the work (its pid) stays known when a later step adds its exit code.
    const cs = { ...this.#status.ContainerStatus, ...status.ContainerStatus };
    if (Object.keys(cs).length > 0) status.ContainerStatus = cs;
    this.#status = status;
    this.#task = { ...this.#task, Status: status };
    this.#reported = true;
    this.deps.report(this.id, status);
    if (r.state === 'preparing') this.#preparingAt = performance.now();
    else if (r.state === 'running' && this.#preparingAt !== undefined) {
      executorStartLatency.observe({ runtime: runtimeOf(this.#task.Spec) }, (performance.now() - this.#preparingAt) / 1000);
      this.#preparingAt = undefined;
    }
    if (r.state === 'running' && this.#task.NetworksAttachments?.length) void this.#networkStarted(status.ContainerStatus?.PID);
  }

  /** Tell the network agent the task's main pid (VIP rules in its namespace); never rejects. */
  #networkStarted(pid: number | undefined): Promise<void> {
    return this.deps.network?.started(this.id, pid).catch((err) => this.deps.log?.(`task ${this.id}: network: ${errorMessage(err)}`)) ?? Promise.resolve();
  }

  async #run(): Promise<void> {
    const task = this.#task;
    const observed = this.#status.State;
    const runtime = runtimeOf(task.Spec);
    let executor: Executor;
    try {
      executor = this.deps.catalog.get(runtime);
    } catch (err) {
      // The message of UnknownRuntimeError names the runtime and what this node has.
      const message = errorMessage(err).includes(runtime) ? errorMessage(err) : `runtime "${runtime}": ${errorMessage(err)}`;
      if (!isTerminal(observed)) this.#report({ state: 'rejected', message, err: message });
      return;
    }
    await mkdir(this.taskDir, { recursive: true, mode: 0o700 });
    let network: TaskNetwork | undefined;
    if (!isTerminal(observed) && task.NetworksAttachments?.length) {
      try {
        if (!this.deps.network) throw new Error('this node does not run overlay networks');
        network = await this.deps.network.prepare(task, executor.capabilities.isolation);
        // An isolated executor calls this once the task's namespace exists (before a health check),
        // so its VIP rules do not wait for "running".
        if (network) network = { ...network, started: (pid) => this.#networkStarted(pid) };
      } catch (err) {
        const message = `network: ${errorMessage(err)}`;
        this.#report({ state: 'rejected', message, err: message });
        return;
      }
    }
    let files: TaskFiles | undefined;
    if (!isTerminal(observed) && taskFileRefs(task.Spec).length) {
      try {
        if (!executor.capabilities.secrets) throw new Error(`runtime "${runtime}" cannot give secrets or configs to its tasks`);
        if (!this.deps.files) throw new Error('this node does not hand out secrets');
        files = await this.deps.files.prepare(task);
      } catch (err) {
        const message = `secrets: ${errorMessage(err)}`;
        // A task found running after a daemon restart keeps what its tmpfs still holds; its
        // controller needs the files only to prepare, which it will not do again.
        if (observed === 'starting' || observed === 'running') {
          this.deps.log?.(`task ${this.id}: ${message}`);
        } else {
          await this.deps.files?.release(this.id);
          this.#report({ state: 'rejected', message, err: message });
          return;
        }
      }
    }
    const env = { ...(network ? {} : this.deps.serviceEnv?.()), ...taskEnv(task, this.deps.nodeAddr, network) };
    const log = (msg: string) => this.deps.log?.(`task ${this.id}: ${msg}`);
    this.#ctl = executor.controller(task, { taskDir: this.taskDir, env, log, ...(network ? { network } : {}), ...(files ? { files } : {}) });
    // Bounded inside the health gate: a slot is held while the task starts, not while it gets healthy.
    if (this.deps.startSlots) this.#ctl = this.deps.startSlots.wrap(this.#ctl);
    // Executors without a health check of their own get the worker's (process, vm, plugins).
    const hc = hostHealthcheck(task.Spec);
    if (hc) this.#ctl = new HealthGate(this.#ctl, hc, commandProbe(hc.Test!, { env: { ...env, ...envOf(task.Spec) }, cwd: task.Spec.ProcessSpec?.Dir, netns: network?.netns, timeoutMs: healthTiming(hc).timeoutMs }), log, stopGraceMs(task.Spec));
    // A terminal task keeps its controller (logs, remove) but has nothing left to drive.
    if (isTerminal(observed)) return;

    let from = observed;
    if (observed === 'starting' || observed === 'running') {
      // Seen already started when first assigned here: a daemon restart. Re-attach, never restart.
      let alive = false;
      try {
        alive = await this.#ctl.recover();
      } catch (err) {
        this.deps.log?.(`task ${this.id}: recover failed: ${errorMessage(err)}`);
      }
      if (!alive) {
        this.#report({ state: 'failed', message: LOST_WHILE_DOWN, err: LOST_WHILE_DOWN });
        await this.deps.files?.release(this.id);
        return;
      }
      if (observed === 'starting') {
        const pid = await this.#ctl.stats().then((st) => st.pid, () => undefined);
        this.#report({ state: 'running', message: 'recovered after a daemon restart', ...(pid !== undefined ? { pid } : {}) });
        from = 'running';
      } else if (task.NetworksAttachments?.length) {
        // Running already: no new "running" report, so tell the network agent here that the task
        // runs, or a container's VIP rules (in its own namespace, found by its pid) would stay as the
        // previous daemon left them while the services behind them change.
        const pid = await this.#ctl.stats().then((st) => st.pid, () => this.#status.ContainerStatus?.PID);
        void this.#networkStarted(pid);
      }
    }
    if (this.#detach.signal.aborted) return;
    this.#driver = new TaskDriver(this.#ctl, { observed: from, desired: this.#task.DesiredState, graceMs: stopGraceMs(task.Spec) });
    for await (const r of this.#driver.run(this.#detach.signal)) this.#report(r);
    // The task's files live no longer than the task (a detached task still runs and keeps them).
    if (files && isTerminal(this.#status.State)) await this.deps.files?.release(this.id);
  }
}

/**
 * Where the services are, for a task on its host's network (a plain process has no resolver of
 * ours): each service with ingress-published ports is reached through this host's mesh, so
 * `SHOAL_SERVICE_<NAME>_HOST` is this host's address, `SHOAL_SERVICE_<NAME>_PORT` its first published
 * port and `SHOAL_SERVICE_<NAME>_PORT_<TARGET>_<PROTO>` each published port by its target (the
 * shapes of Kubernetes' service variables). Names upper-cased, other characters `_`. A snapshot at
 * the task's start, as environment variables are.
 */
export function serviceEnv(ports: readonly EndpointPort[], nodeAddr?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!nodeAddr) return out;
  for (const p of ports) {
    if (p.mode !== 'ingress') continue;
    const name = p.service.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    out[`SHOAL_SERVICE_${name}_HOST`] = nodeAddr;
    out[`SHOAL_SERVICE_${name}_PORT`] ??= String(p.port);
    out[`SHOAL_SERVICE_${name}_PORT_${p.target}_${p.protocol.toUpperCase()}`] = String(p.port);
  }
  return out;
}

/** The spec's own KEY=VALUE environment, for its health check. */
function envOf(spec: Task['Spec']): Record<string, string> {
  const list = spec.ProcessSpec?.Env ?? [];
  return Object.fromEntries(list.filter((e) => e.includes('=')).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** What a task learns about itself from its environment (the spec's own Env wins). */
export function taskEnv(task: Task, nodeAddr?: string, network?: TaskNetwork): Record<string, string> {
  const own = network?.attachments[0]?.address.split('/')[0];
  return {
    ...(nodeAddr ? { SHOAL_NODE_ADDR: nodeAddr } : {}),
    // A task on overlay networks listens on its own address (and resolves names through its resolv.conf).
    ...(own ? { SHOAL_TASK_ADDR: own } : {}),
    SHOAL_TASK_ID: task.ID,
    SHOAL_TASK_SLOT: String(task.Slot),
    SHOAL_SERVICE_ID: task.ServiceID,
    SHOAL_NODE_ID: task.NodeID,
    ...(task.Name ? { SHOAL_TASK_NAME: task.Name } : {}),
  };
}
