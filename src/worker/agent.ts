/**
 * The worker agent (swarmkit's agent, Nomad's client): keeps a session with a dispatcher, runs one
 * TaskRunner per assigned task, reports their status, and serves their logs to the manager.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogLine, LogOptions } from '../executor/contract.ts';
import type { Executor } from '../executor/contract.ts';
import { errorMessage, NotFoundError } from '../lib/errors.ts';
import type { Message } from '../lib/frames.ts';
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import type { Conn } from '../manager/dispatcher/conn.ts';
import { type EndpointPort, type NetTable, MAX_LOG_LINES_PER_FRAME, type RevokedClientCert, type SessionMessages } from '../manager/dispatcher/protocol.ts';
import { isTerminal, type NodeDescription, type Task, type TaskState, type TaskStatus } from '../types/index.ts';
import { runtimeOf } from '../types/runtime.ts';
import type { SessionHint } from './manager-order.ts';
import { serviceEnv, TaskRunner, type TaskNetworking } from './runner.ts';
import { type BackoffOptions, SessionClient } from './session.ts';
import { SecretCache, TaskFileMounts } from './secret-files.ts';
import { DEFAULT_CONCURRENT_STARTS, StartSlots } from './start-slots.ts';

/** What the agent needs of `ExecutorCatalog`. */
export interface AgentCatalog {
  get(name: string): Executor;
  fingerprintAll(signal?: AbortSignal): Promise<NonNullable<NodeDescription['Runtimes']>>;
}

export interface AgentOptions {
  nodeId: string;
  dataDir: string;
  catalog: AgentCatalog;
  /**
   * Open a byte stream to a dispatcher (a libp2p stream to the leader; in tests, a memory pair);
   * `hint`: how the last attempt ended (manager-order.ts).
   */
  connect: (signal: AbortSignal, hint?: SessionHint) => Promise<Conn>;
  /** This host, without `Runtimes`: the agent adds them from the catalog's fingerprints. */
  description: () => NodeDescription | Promise<NodeDescription>;
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffOptions;
  /** How long `stop()` waits for the final task status to be acknowledged. Default 5 s. */
  finalReportTimeoutMs?: number;
  /**
   * How often the runtimes are fingerprinted again; a change in health is sent to the manager, so
   * the scheduler stops (or starts) placing a runtime's tasks here. Default 30 s; 0 turns it off.
   */
  fingerprintIntervalMs?: number;
  /** Log streams served to managers at once. Default 32. */
  maxLogStreams?: number;
  /** Tasks preparing or starting at once (start-slots.ts). Default 32. */
  maxConcurrentStarts?: number;
  /** The cluster's endpoint table, whole, each time the dispatcher sends it (for the ingress mesh). */
  onEndpoints?: (ports: EndpointPort[]) => void;
  /** The overlay networks' table, whole, each time the dispatcher sends it. */
  onNetworks?: (table: NetTable) => void;
  /**
   * The revoked client bundles, whole, each time the dispatcher sends them (for this host's
   * `--metrics-addr` listener). Without it the agent does not ask for them.
   */
  onRevocations?: (revoked: RevokedClientCert[]) => void;
  /** This host's overlay plumbing for tasks with networks (`NetworkAgent`). */
  network?: TaskNetworking;
  /** This host's mesh address, given to tasks as SHOAL_NODE_ADDR (where a process task should listen). */
  nodeAddr?: string;
  /** Parent directory of the per-task tmpfs mounts of secrets and configs. Default /run/shoal/task-files. */
  taskFilesDir?: string;
  /** The cluster's role for this node, as the dispatcher reports it with each heartbeat ack. */
  onRole?: (role: 'manager' | 'worker') => void;
  /** The roots the cluster wants nodes to trust, as each heartbeat ack names them (a root rotation). */
  onCA?: (epoch: string) => void;
  log?: (msg: string) => void;
}

/** Longer lines are cut to fit the `logs.line` frame's per-line bound. */
const MAX_LOG_LINE_CHARS = 16 * 1024;
const LOG_BATCH_BYTES = 1024 * 1024;

export interface AgentTaskView { id: string; state: TaskState; desired: TaskState; status: TaskStatus; runtime?: string }

export class Agent {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly session: SessionClient;
  readonly #o: AgentOptions;
  readonly #runners = new Map<string, TaskRunner>();
  readonly #removing = new Set<Promise<void>>();
  readonly #logStreams = new Map<number, AbortController>();
  /** Secrets and configs of this node's tasks, in memory only (see secret-files.ts). */
  readonly secrets = new SecretCache();
  readonly #files: TaskFileMounts;
  readonly #startSlots: StartSlots;
  #fullParts: Task[] | null = null;
  /** The last endpoint table: plain processes learn the services' addresses from it at start. */
  #endpoints: EndpointPort[] = [];
  /** The runtimes as last sent to a manager (JSON), to send a description only when it changed. */
  #lastRuntimes = '';
  #cancelRefresh: (() => void) | null = null;
  #refreshing: Promise<void> | null = null;
  readonly #refreshStop = new AbortController();
  #stopping = false;
  #started = false;

  constructor(opts: AgentOptions) {
    this.#o = opts;
    this.nodeId = opts.nodeId;
    this.dataDir = opts.dataDir;
    this.#startSlots = new StartSlots(opts.maxConcurrentStarts ?? DEFAULT_CONCURRENT_STARTS);
    this.#files = new TaskFileMounts({ root: opts.taskFilesDir ?? '/run/shoal/task-files', cache: this.secrets, log: opts.log });
    this.session = new SessionClient({
      nodeId: opts.nodeId,
      connect: opts.connect,
      description: async (signal) => {
        const d = await this.#describe(signal);
        this.#lastRuntimes = JSON.stringify(d.Runtimes);
        return d;
      },
      clock: opts.clock,
      random: opts.random,
      backoff: opts.backoff,
      log: opts.log,
      handlers: {
        registered: () => this.#reportAll(),
        assignments: (full, last, tasks, removed) => this.#onAssignments(full, last, tasks, removed),
        endpoints: (ports) => {
          this.#endpoints = ports;
          if (!this.#stopping) opts.onEndpoints?.(ports);
        },
        networks: (table) => { if (!this.#stopping) opts.onNetworks?.(table); },
        ...(opts.onRevocations ? { revocations: opts.onRevocations } : {}),
        secrets: (body) => {
          this.secrets.apply(body);
          // Names and IDs only: which node held what, and when, is worth a line; the content never is.
          for (const p of body.upserts) opts.log?.(`agent: holds ${p.kind} ${p.name} (${p.id}) for its tasks`);
          for (const k of body.removed) opts.log?.(`agent: forgot ${k.kind} ${k.id}: no unfinished task here uses it`);
        },
        logsRequest: (req, send) => this.#serveLogs(req, send),
        logsCancel: (id) => this.#logStreams.get(id)?.abort(),
        role: (role) => opts.onRole?.(role),
        ca: (epoch) => opts.onCA?.(epoch),
        closed: () => {
          this.#fullParts = null;
          for (const ac of this.#logStreams.values()) ac.abort();
        },
      },
    });
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await mkdir(join(this.dataDir, 'tasks'), { recursive: true, mode: 0o700 });
    this.session.start();
    this.#armRefresh();
  }

  async #describe(signal: AbortSignal): Promise<NodeDescription> {
    return { ...(await this.#o.description()), Runtimes: await this.#o.catalog.fingerprintAll(signal) };
  }

  #armRefresh(): void {
    const every = this.#o.fingerprintIntervalMs ?? 30_000;
    if (every <= 0 || this.#stopping) return;
    this.#cancelRefresh = (this.#o.clock ?? systemClock).setTimer(every, () => {
      this.#armRefresh(); // a steady period; a refresh still running skips this turn
      if (this.#refreshing) return;
      this.#refreshing = this.#refreshRuntimes().finally(() => { this.#refreshing = null; });
    });
  }

  /** Fingerprint again; when a runtime's health changed, tell the manager. Never throws. */
  async #refreshRuntimes(): Promise<void> {
    if (!this.session.connected) return;
    try {
      const d = await this.#describe(this.#refreshStop.signal);
      const runtimes = JSON.stringify(d.Runtimes);
      if (runtimes === this.#lastRuntimes || this.#stopping) return;
      if (this.session.describe(d)) {
        this.#lastRuntimes = runtimes;
        this.#o.log?.(`agent: runtimes changed: ${(d.Runtimes ?? []).map((r) => `${r.Name}${r.Healthy ? '' : ' (unhealthy)'}`).join(', ')}`);
      }
    } catch (err) {
      this.#o.log?.(`agent: fingerprinting failed: ${errorMessage(err)}`);
    }
  }

  /**
   * Stop the agent. By default every task is stopped (nothing is left running) and its final state
   * reported before the session closes; `keepTasks: true` leaves the tasks running for the next
   * daemon to recover.
   */
  async stop(opts: { keepTasks?: boolean } = {}): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#cancelRefresh?.();
    this.#refreshStop.abort();
    const runners = [...this.#runners.values()];
    if (opts.keepTasks) {
      await Promise.all(runners.map((r) => r.detach()));
    } else {
      await Promise.all(runners.map((r) => r.shutdown()));
      if (this.session.connected) await this.session.flushed(this.#o.finalReportTimeoutMs ?? 5_000);
    }
    await Promise.allSettled([...this.#removing]);
    for (const ac of this.#logStreams.values()) ac.abort();
    await this.session.stop();
  }

  /** The tasks this agent runs now. */
  tasks(): AgentTaskView[] {
    return [...this.#runners.values()].map((r) => ({ id: r.id, state: r.status.State, desired: r.desired, status: r.status, runtime: runtimeOf(r.task.Spec) }));
  }

  task(taskId: string): AgentTaskView | undefined {
    const r = this.#runners.get(taskId);
    return r && { id: r.id, state: r.status.State, desired: r.desired, status: r.status };
  }

  /** A local task's output (the API on this node; managers ask over the session). */
  taskLogs(taskId: string, opts: LogOptions = {}): AsyncIterable<LogLine> {
    const r = this.#runners.get(taskId);
    if (!r) throw new NotFoundError(`task ${taskId} is not on node ${this.nodeId}`);
    return r.logs(opts);
  }

  // ------------------------------------------------------------------ assignments

  #onAssignments(full: boolean, last: boolean, tasks: Task[], removed: string[]): void {
    if (this.#stopping) return;
    if (!full) {
      for (const t of tasks) this.#upsert(t);
      for (const id of removed) this.#remove(id);
      return;
    }
    // A full set may span frames; act on it only once it is whole, so no task is dropped in between.
    (this.#fullParts ??= []).push(...tasks);
    if (!last) return;
    const whole = this.#fullParts;
    this.#fullParts = null;
    this.#applyFull(whole);
  }

  #applyFull(tasks: Task[]): void {
    const keep = new Set(tasks.map((t) => t.ID));
    for (const t of tasks) this.#upsert(t);
    for (const id of [...this.#runners.keys()]) if (!keep.has(id)) this.#remove(id);
    // A new session resends what unfinished tasks need; anything else this node held is stale.
    this.secrets.retainFor(tasks.filter((t) => !isTerminal(t.Status.State)));
  }

  #upsert(t: Task): void {
    if (t.NodeID !== this.nodeId) return;
    const existing = this.#runners.get(t.ID);
    if (existing) return existing.update(t);
    const r = new TaskRunner(t, {
      catalog: this.#o.catalog,
      dataDir: this.dataDir,
      nodeAddr: this.#o.nodeAddr,
      serviceEnv: () => serviceEnv(this.#endpoints, this.#o.nodeAddr),
      ...(this.#o.network ? { network: this.#o.network } : {}),
      files: this.#files,
      startSlots: this.#startSlots,
      report: (id, status) => { if (this.#runners.get(id) === r || !this.#runners.has(id)) this.session.report(id, status); },
      log: this.#o.log,
      clock: this.#o.clock,
    });
    this.#runners.set(t.ID, r);
    r.start();
  }

  #remove(id: string): void {
    const r = this.#runners.get(id);
    if (!r) return;
    this.#runners.delete(id);
    const p = r.remove()
      .catch((err) => this.#o.log?.(`task ${id}: remove failed: ${errorMessage(err)}`))
      .finally(() => this.#removing.delete(p));
    this.#removing.add(p);
  }

  /** A new session: the manager may have missed reports, so send every task's latest status again. */
  #reportAll(): void {
    for (const r of this.#runners.values()) if (r.reported) this.session.report(r.id, r.status);
  }

  // ------------------------------------------------------------------ logs for the manager

  #serveLogs(req: SessionMessages['logs.request'], send: (m: Message<SessionMessages>) => boolean): void {
    const { requestId, taskId } = req;
    const runner = this.#runners.get(taskId);
    if (!runner) {
      send({ t: 'logs.end', b: { requestId, error: `task ${taskId} is not on node ${this.nodeId}` } });
      return;
    }
    if (this.#logStreams.size >= (this.#o.maxLogStreams ?? 32) || this.#logStreams.has(requestId)) {
      send({ t: 'logs.end', b: { requestId, error: `node ${this.nodeId} is serving too many log streams; try again later` } });
      return;
    }
    const ac = new AbortController();
    this.#logStreams.set(requestId, ac);
    void (async () => {
      let batch: LogLine[] = [];
      let batchBytes = 0;
      let error: string | undefined;
      const flush = () => {
        if (batch.length === 0) return true;
        const ok = send({ t: 'logs.line', b: { requestId, lines: batch } });
        batch = [];
        batchBytes = 0;
        return ok;
      };
      try {
        let scheduled = false;
        for await (const line of runner.logs({ follow: req.follow === true, since: req.since ?? undefined, tail: req.tail ?? undefined, signal: ac.signal })) {
          if (ac.signal.aborted) break;
          const text = line.line.length > MAX_LOG_LINE_CHARS ? line.line.slice(0, MAX_LOG_LINE_CHARS) : line.line;
          batch.push({ stream: line.stream, time: line.time, line: text });
          batchBytes += text.length * 3 + 32;
          if (batch.length >= MAX_LOG_LINES_PER_FRAME || batchBytes >= LOG_BATCH_BYTES) {
            if (!flush()) break;
          } else if (!scheduled) {
            // Lines produced together leave together; a quiet follower still sees each line promptly.
            scheduled = true;
            queueMicrotask(() => { scheduled = false; if (!ac.signal.aborted) flush(); });
          }
        }
      } catch (err) {
        if (!ac.signal.aborted) error = errorMessage(err);
      } finally {
        this.#logStreams.delete(requestId);
      }
      flush();
      send({ t: 'logs.end', b: { requestId, ...(error ? { error } : {}) } });
    })();
  }
}
