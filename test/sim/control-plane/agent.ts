/**
 * A simulated worker host: the real session client (src/worker/session.ts) speaking the real
 * dispatcher protocol, over a simulated link, with a fake executor in place of the agent's task
 * runners. The fake executor walks each assigned task through accepted → preparing → starting →
 * running after seeded delays, stops it when its desired state passes running, and, while the
 * simulation is in its chaos phase, fails some starts and lets tasks of a "bad" template
 * (`MockSpec.ExitCode` ≠ 0) exit with an error after `MockSpec.RunFor`.
 *
 * A crash loses every task on the host (as a host reboot kills its containers): after a restart, a
 * task the manager still thinks is past `assigned` here is reported failed, as the real agent does
 * when its executor cannot recover it.
 */
import { NS_PER_MS, stateRank, isTerminal, type Task, type TaskState } from '../../../src/types/index.ts';
import { SessionClient } from '../../../src/worker/session.ts';
import type { Rng } from '../rng.ts';
import type { SimClock } from '../clock.ts';
import { EPOCH_MS, sessionClock } from './net.ts';
import type { Conn } from '../../../src/manager/dispatcher/conn.ts';

const RUNNING = stateRank('running');

interface Running {
  task: Task;
  state: TaskState;
  /** Bumped on every stop/forget: a pending step of an older life does nothing. */
  life: number;
}

export interface AgentEnv {
  sim: SimClock;
  rng: Rng;
  /** Connect to the current leader's dispatcher over this host's link; rejects when unreachable. */
  connect(nodeId: string, signal: AbortSignal): Promise<Conn>;
  /** Whether faults (start failures, bad templates) are still being injected. */
  chaos(): boolean;
  trace(line: string): void;
}

export class SimAgent {
  up = false;
  session: SessionClient | null = null;
  readonly tasks = new Map<string, Running>();
  #full: Task[] | null = null;
  #life = 0;

  constructor(readonly nodeId: string, private readonly env: AgentEnv) {}

  /** Task ids the fake executor is running now (ground truth, whatever the store says). */
  runningIds(): string[] {
    return [...this.tasks.values()].filter((r) => r.state === 'running').map((r) => r.task.ID);
  }

  boot(): void {
    if (this.up) return;
    this.up = true;
    const env = this.env;
    this.session = new SessionClient({
      nodeId: this.nodeId,
      connect: (signal) => env.connect(this.nodeId, signal),
      description: async () => ({
        Hostname: this.nodeId,
        Platform: { OS: 'linux', Architecture: 'x86_64' },
        Resources: { NanoCPUs: 4e9, MemoryBytes: 8 * 2 ** 30 },
        Engine: { EngineVersion: 'sim', Plugins: [] },
        Runtimes: [{ Name: 'mock', Healthy: true }],
      }),
      clock: sessionClock(env.sim),
      random: () => env.rng.next(),
      handlers: {
        registered: () => { for (const r of this.tasks.values()) this.#report(r.task.ID, r.state); },
        assignments: (full, last, tasks, removed) => this.#onAssignments(full, last, tasks, removed),
        logsRequest: () => {},
        logsCancel: () => {},
        closed: () => { this.#full = null; },
      },
    });
    this.session.start();
  }

  /** The host dies: its tasks die with it, its connections go silent. */
  crash(): void {
    if (!this.up) return;
    this.up = false;
    this.#life++;
    this.tasks.clear();
    this.#full = null;
    const s = this.session;
    this.session = null;
    void s?.stop();
  }

  #onAssignments(full: boolean, last: boolean, tasks: Task[], removed: string[]): void {
    if (!full) {
      for (const t of tasks) this.#upsert(t);
      for (const id of removed) this.tasks.delete(id);
      return;
    }
    (this.#full ??= []).push(...tasks);
    if (!last) return;
    const whole = this.#full;
    this.#full = null;
    const keep = new Set(whole.map((t) => t.ID));
    for (const t of whole) this.#upsert(t);
    for (const id of [...this.tasks.keys()]) if (!keep.has(id)) this.tasks.delete(id);
  }

  #upsert(t: Task): void {
    if (t.NodeID !== this.nodeId) return;
    const cur = this.tasks.get(t.ID);
    const wantRun = stateRank(t.DesiredState) <= RUNNING;
    if (cur) {
      cur.task = t;
      if (!wantRun && !isTerminal(cur.state)) this.#stop(cur);
      return;
    }
    if (isTerminal(t.Status.State)) return;
    if (stateRank(t.Status.State) > stateRank('assigned')) {
      // The manager thinks this task runs here, but this host has never heard of it (it crashed).
      this.#report(t.ID, wantRun ? 'failed' : 'shutdown', 'task lost: the host restarted');
      return;
    }
    const r: Running = { task: t, state: t.Status.State, life: this.#life };
    this.tasks.set(t.ID, r);
    if (!wantRun) return this.#set(r, 'shutdown', 'stopped before it started');
    this.#start(r);
  }

  #start(r: Running): void {
    const { rng } = this.env;
    const steps: TaskState[] = ['accepted', 'preparing', 'starting', 'running'];
    let delay = 0;
    for (const s of steps) {
      delay += rng.range(10, 400);
      this.#after(r, delay, () => {
        if (isTerminal(r.state) || stateRank(r.task.DesiredState) > RUNNING) return;
        if (s === 'starting' && this.env.chaos() && rng.chance(0.05)) return this.#set(r, 'failed', 'simulated start failure');
        this.#set(r, s);
        if (s === 'running') this.#maybeExit(r);
      });
    }
  }

  #maybeExit(r: Running): void {
    const m = r.task.Spec.MockSpec;
    if (m?.ExitCode && this.env.chaos()) {
      const runMs = Math.floor((m.RunFor ?? 0) / NS_PER_MS);
      this.#after(r, runMs, () => { if (r.state === 'running' && this.env.chaos()) this.#set(r, 'failed', `exited with code ${m.ExitCode}`); });
    } else if (this.env.chaos() && this.env.rng.chance(0.03)) {
      this.#after(r, this.env.rng.range(500, 20_000), () => { if (r.state === 'running' && this.env.chaos()) this.#set(r, 'failed', 'simulated crash of the task'); });
    }
  }

  #stop(r: Running): void {
    this.#after(r, this.env.rng.range(10, 500), () => { if (!isTerminal(r.state)) this.#set(r, 'shutdown', 'stopped'); });
  }

  #after(r: Running, ms: number, fn: () => void): void {
    const life = this.#life;
    this.env.sim.after(ms, () => { if (this.up && life === this.#life && this.tasks.get(r.task.ID) === r) fn(); });
  }

  #set(r: Running, state: TaskState, message: string = state): void {
    r.state = state;
    this.env.trace(`${this.nodeId}: task ${r.task.ServiceID}.${r.task.Slot || this.nodeId} ${r.task.ID.slice(0, 6)} → ${state}`);
    this.#report(r.task.ID, state, message);
  }

  #report(id: string, state: TaskState, message: string = state): void {
    const err = state === 'failed' ? { Err: message } : {};
    this.session?.report(id, { Timestamp: new Date(EPOCH_MS + this.env.sim.nowMs).toISOString(), State: state, Message: message, ...err });
  }
}
