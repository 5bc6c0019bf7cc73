/**
 * The process executor: runs `ProcessSpec.Command` as a plain host process in its own process
 * group, through a supervisor so the process survives a daemon crash and a restarted daemon can
 * `recover()` it: a native supervisor of up to 128 tasks (native/shim.c, launcher.ts), or where no
 * C compiler is found a JavaScript shim per task (shim.ts). Everything a controller knows lives in
 * the task directory (files.ts).
 * Without `ProcessSpec.Dir` the program runs in `<taskDir>/work`, a scratch directory owned by the
 * task's user and removed with the task.
 *
 * A task on overlay networks runs inside the network namespace the worker made for it
 * (`TaskContext.network.netns`) and sees `network.dns` in its /etc/resolv.conf (see launch.ts).
 */
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import type {
  Controller, Executor, ExecutorCapabilities, ExitStatus, Fingerprint, LogLine, LogOptions, TaskContext, TaskStats,
} from '../../src/executor/contract.ts';
import { PrepareError, StartError } from '../../src/executor/errors.ts';
import { pause, pollUntil } from '../../src/executor/logs.ts';
import type { ProcessSpec, Task } from '../../src/types/index.ts';
import {
  isAlive, path, procStat, readJson, writeJsonAtomicAsync, type ExitRecord, type PidRecord, type ShimSpec,
} from './files.ts';
import { groupStats, readLogs } from './logs.ts';
import { killGroup, SHIM_ARG, SHIM_ENV, shimCommand } from './shim.ts';
import {
  cgroupMemoryBytes, createTaskCgroup, detectCgroups, killCgroup, removeCgroup, type CgroupSupport, type TaskCgroup,
} from './cgroup.ts';
import { nativeShim } from './native-shim.ts';
import { ShimLauncher, type ShimEvents } from './launcher.ts';
import { findTools, launchArgv, missingTools, type HostTools, type LaunchPlan } from './launch.ts';
import { resolveUser, supplementaryGroups, type ResolvedUser } from './user.ts';
import { signalName, validateProcessSpec } from './validate.ts';

export { runShim, shimCommand, SHIM_ARG, SHIM_ENV } from './shim.ts';

export interface ProcessExecutorOptions {
  /**
   * How to start a shim (task dir appended). Default: the native shim in `nativeShimDir` when it
   * can be built there (native-shim.ts), else `shimCommand()`, the shoal executable.
   */
  shimCommand?: string[];
  /**
   * `shimCommand` is the native shim: start tasks through its supervisors (launcher.ts), which
   * join them to their cgroups themselves. The native shim this executor builds itself always is.
   */
  shimLauncher?: boolean;
  /** Where the native shim is compiled and kept (the daemon: `<data-dir>/bin`). None: the JavaScript shim. */
  nativeShimDir?: string;
  /** Where the executor says which shim it uses. */
  log?: (msg: string) => void;
  /** Rotate a task's output.log past this size; one previous file is kept. Default 16 MiB. */
  logMaxBytes?: number;
  /** How long `start` waits for the shim to report the program started. Default 10 s. */
  startTimeoutMs?: number;
  /** Put each task in a cgroup `<cgroupParent>/<task id>` when the host allows. Default true, "shoal". */
  cgroups?: boolean;
  cgroupParent?: string;
}

/** What the host offers the process runtime; probed once per executor, on first use. */
interface HostSupport { cgroups: CgroupSupport; tools: HostTools }

const POLL_MS = 25;
/** How often a task whose shim reports by events looks at its files anyway (an event lost is late, not missed). */
const EVENT_FALLBACK_MS = 5_000;
/** How often a task without events (a shim re-attached after a restart) looks whether it ended. */
const EXIT_POLL_MS = 500;
const KILL_WAIT_MS = 5_000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where a task with Isolation.Mount sees its secrets and configs (a container's secrets are at /run/secrets too). */
export const TASK_SECRETS_DIR = '/run/secrets';
export const TASK_CONFIGS_DIR = '/run/configs';

const isRoot = () => process.getuid?.() === 0;

export function createProcessExecutor(opts: ProcessExecutorOptions = {}): Executor {
  const capabilities: ExecutorCapabilities = {
    recover: true, stats: true, logsFollow: true, signals: true, isolation: false, runAsUser: isRoot(),
    secrets: true,
  };
  let support: HostSupport | undefined;
  let chosen: Promise<ChosenShim> | undefined;
  /** The shim, chosen once (a native shim deleted since is built again, with a launcher of its own). */
  const spawner = (): Promise<ChosenShim> => {
    if (opts.shimCommand) {
      chosen ??= Promise.resolve({
        cmd: opts.shimCommand, native: !!opts.shimLauncher, ...(opts.shimLauncher ? { launcher: newLauncher(opts.shimCommand[0]!) } : {}),
      });
      return chosen;
    }
    chosen = chosen?.then((c) => {
      if (existsSync(c.cmd[0]!)) return c;
      void c.launcher?.close();
      return chooseShim(opts, newLauncher);
    }) ?? chooseShim(opts, newLauncher);
    return chosen;
  };
  const newLauncher = (shimPath: string) => new ShimLauncher(shimPath, { ...process.env, [SHIM_ENV]: '1' }, opts.log ?? (() => {}));
  const shim = async (): Promise<string[]> => (await spawner()).cmd;
  const host = (): HostSupport => (support ??= {
    cgroups: opts.cgroups === false ? { mode: 'none', note: 'cgroups turned off' } : detectCgroups(opts.cgroupParent ?? 'shoal'),
    tools: findTools(),
  });
  return {
    name: 'process',
    capabilities,
    async fingerprint(): Promise<Fingerprint> {
      const { cgroups, tools } = host();
      const attributes = {
        'process.root': String(isRoot()), 'process.os': process.platform, 'process.arch': process.arch,
        'process.cgroup': cgroups.mode,
        'process.cgroup.memory': String(!!cgroups.memoryRoot), 'process.cgroup.cpu': String(!!cgroups.cpuRoot),
        'process.cgroup.kill': String(!!cgroups.unifiedRoot),
        'process.isolation': String(isRoot() && !!tools.unshare),
        'process.groups': String(isRoot() && !!tools.setpriv),
        // Can join the worker's network namespaces (overlay networks).
        'process.netns': String(isRoot() && !!tools.sh && !!tools.nsenter && !!tools.unshare && !!tools.mount),
      };
      const resources = { nanoCPUs: cpus().length * 1e9, memoryBytes: totalmem() };
      if (process.platform !== 'linux' || !existsSync('/proc/self/stat')) {
        return { healthy: false, message: 'the process runtime needs Linux with /proc mounted', attributes };
      }
      const shimPath = (await shim())[0]!;
      if (!existsSync(shimPath)) return { healthy: false, message: `process shim ${shimPath} not found`, attributes };
      return { healthy: true, attributes, resources, ...(cgroups.note ? { message: cgroups.note } : {}) };
    },
    validate: validateProcessSpec,
    controller(task: Task, ctx: TaskContext): Controller {
      return new ProcessController(task, ctx, opts, host, spawner);
    },
    async close(): Promise<void> {
      const c = await chosen?.catch(() => undefined);
      await c?.launcher?.close();
    },
  };
}

class ProcessController implements Controller {
  readonly #spec: ProcessSpec;
  readonly #dir: string;
  #shimProc?: Bun.Subprocess;
  #specRead?: ShimSpec;
  /** What the launcher tells of this task's shim, when it started it. */
  #events?: ShimEvents;
  #stopping?: Promise<void>;
  #removed = false;

  constructor(
    readonly task: Task, readonly ctx: TaskContext, readonly opts: ProcessExecutorOptions, readonly host: () => HostSupport,
    readonly spawner: () => Promise<ChosenShim>,
  ) {
    this.#spec = task.Spec.ProcessSpec ?? { Command: [] };
    this.#dir = ctx.taskDir;
  }

  /**
   * spec.json as prepare wrote it (read once: it changes only when prepare writes it again, and it
   * holds the task's whole environment, too much to parse on every look at a starting task).
   */
  #shimSpec(): ShimSpec | undefined {
    return (this.#specRead ??= readJson<ShimSpec>(path(this.#dir, 'spec')));
  }
  #cgroup(): TaskCgroup | undefined { return this.#shimSpec()?.cgroup; }
  #exit(): ExitRecord | undefined { return readJson<ExitRecord>(path(this.#dir, 'exit')); }
  #child(): PidRecord | undefined { return readJson<PidRecord>(path(this.#dir, 'child')); }
  #shim(): PidRecord | undefined { return readJson<PidRecord>(path(this.#dir, 'shim')); }
  /** The program runs: spawned, and past the launch steps whose failure is a start error. */
  #launched(): boolean {
    if (!this.#child()) return false;
    const netns = this.#shimSpec()?.netns;
    return !netns || existsSync(path(this.#dir, 'launched'));
  }
  #shimAlive(): boolean {
    const ev = this.#events;
    if (ev && !ev.lost) return !ev.hasExited;
    const proc = this.#shimProc;
    if (!proc) {
      // A supervisor of many tasks outlives this one: its supervision of it is over once exit.json is written (its last write for the task).
      const shim = this.#shim();
      return isAlive(shim) && !(shim?.shared && this.#exit());
    }
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    // Bun may not have reaped an unref'd child yet: a zombie counts as gone.
    const st = procStat(proc.pid);
    return !!st && st.state !== 'Z' && st.state !== 'X';
  }

  async prepare(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const invalid = validateProcessSpec(this.task.Spec);
    if (invalid) throw new PrepareError(invalid);
    const p = this.#spec;
    const { cgroups, tools } = this.host();
    let user: ResolvedUser | undefined;
    if (p.User !== undefined || p.Groups?.length) {
      const who = p.User ?? String(process.getuid?.() ?? 0);
      const field = p.User !== undefined ? 'ProcessSpec.User' : 'ProcessSpec.Groups';
      try {
        user = resolveUser(who);
        user.groups = supplementaryGroups(user, p.Groups ?? []);
      } catch (err) { throw new PrepareError((err as Error).message); }
      const same = user.uid === process.getuid?.() && user.gid === process.getgid?.() && !p.Groups?.length;
      if (!same && !isRoot()) {
        throw new PrepareError(`${field}: running as "${p.User ?? who}"${p.Groups?.length ? ` with groups ${p.Groups.join(',')}` : ''} needs the daemon to run as root (it runs as uid ${process.getuid?.()})`);
      }
      if (same) user = { ...user, uid: -1 }; // nothing to switch
    }
    const iso = p.Isolation;
    if ((iso?.Pid || iso?.Mount || iso?.Network) && !isRoot()) {
      throw new PrepareError(`ProcessSpec.Isolation: namespaces need the daemon to run as root (it runs as uid ${process.getuid?.()})`);
    }
    const netns = this.ctx.network?.netns;
    const dns = this.ctx.network?.dns ?? [];
    if (netns) {
      if (!isRoot()) {
        throw new PrepareError(`network namespace ${netns}: entering it needs the daemon to run as root (it runs as uid ${process.getuid?.()})`);
      }
      if (!existsSync(netns)) throw new PrepareError(`network namespace ${netns} does not exist on this node`);
      if (dns.length && !existsSync('/etc/resolv.conf')) {
        throw new PrepareError(`network namespace ${netns}: /etc/resolv.conf is missing on this node, so the task's resolvers (${dns.join(', ')}) cannot be mounted over it`);
      }
    }
    if (p.Dir !== undefined && !(existsSync(p.Dir) && statSync(p.Dir).isDirectory())) {
      throw new PrepareError(`ProcessSpec.Dir: ${p.Dir} is not a directory on this node`);
    }
    const workDir = join(this.#dir, 'work');
    const filesBinds: [string, string][] | undefined = iso?.Mount && this.ctx.files
      ? [[this.ctx.files.secretsDir, TASK_SECRETS_DIR], [this.ctx.files.configsDir, TASK_CONFIGS_DIR]]
      : undefined;
    // Mount points only, on the host: the task's own files are bound over them inside its namespace.
    for (const [, to] of filesBinds ?? []) {
      try {
        mkdirSync(to, { recursive: true, mode: 0o755 });
        if (!statSync(to).isDirectory()) throw new Error('not a directory');
      } catch (err) {
        throw new PrepareError(`ProcessSpec.Isolation.Mount: ${to} on this node cannot hold the task's secrets or configs: ${(err as Error).message}`);
      }
    }
    try {
      // Off the event loop, as the cgroup and the spec below: a thousand tasks prepare at a time.
      await mkdir(workDir, { recursive: true });
      if (user && user.uid >= 0) chownSync(workDir, user.uid, user.gid);
      // Only the task's user may enter its files' tmpfs; each file keeps the owner and mode it was given.
      if (this.ctx.files && user && user.uid >= 0) {
        chownSync(this.ctx.files.dir, user.uid, user.gid);
        chmodSync(this.ctx.files.dir, 0o500);
      }
      await rm(path(this.#dir, 'launched'), { force: true });
      // Readable by the task's user: once mounted, /etc/resolv.conf is this file.
      if (netns && dns.length) writeFileSync(path(this.#dir, 'resolv'), resolvConf(dns), { mode: 0o644 });
    } catch (err) {
      throw new PrepareError(`task directory ${this.#dir}: ${(err as Error).message}`);
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? DEFAULT_PATH,
      HOME: user?.home ?? (user ? '/' : process.env.HOME ?? '/'),
      ...(user?.name ? { USER: user.name, LOGNAME: user.name } : {}),
      ...this.ctx.env,
      // Secrets and configs: files in the task's own tmpfs (the worker wrote them; see TaskContext.files),
      // seen at /run/secrets and /run/configs by a task with a mount namespace of its own.
      ...(this.ctx.files ? { SHOAL_SECRETS_DIR: filesBinds ? TASK_SECRETS_DIR : this.ctx.files.secretsDir, SHOAL_CONFIGS_DIR: filesBinds ? TASK_CONFIGS_DIR : this.ctx.files.configsDir } : {}),
    };
    for (const kv of p.Env ?? []) { const i = kv.indexOf('='); env[kv.slice(0, i)] = kv.slice(i + 1); }
    const switching = user && user.uid >= 0 ? user : undefined;
    // setpriv sets supplementary groups; Bun's spawn can only set uid and gid (and drops the rest).
    // Entering a namespace needs root: then the switch must come after it, in the launch chain.
    const viaSetpriv = !!switching && (!!tools.setpriv || !!switching.groups?.length || !!netns);
    const limits = this.task.Spec.Resources?.Limits ?? {};
    const wantCgroup = cgroups.mode !== 'none' || !!limits.MemoryBytes || !!limits.NanoCPUs;
    const plan: LaunchPlan = {
      cgroupProcs: [], ...(iso ? { isolation: iso } : {}), ...(filesBinds ? { files: filesBinds } : {}),
      ...(viaSetpriv ? { user: { uid: switching.uid, gid: switching.gid, groups: switching.groups ?? [] } } : {}),
      ...(netns ? {
        netns: { path: netns, mark: path(this.#dir, 'launched'), ...(dns.length ? { resolvConf: path(this.#dir, 'resolv') } : {}) },
      } : {}),
    };
    // Only the cgroup step's presence matters for the tools check; its paths come below.
    const missing = missingTools({ ...plan, cgroupProcs: wantCgroup && cgroups.mode !== 'none' ? ['x'] : [] }, tools);
    if (missing) throw new PrepareError(missing);
    let cgroup: TaskCgroup | undefined;
    if (wantCgroup) {
      try {
        cgroup = await createTaskCgroup(cgroups, this.opts.cgroupParent ?? 'shoal', this.task.ID, { memoryBytes: limits.MemoryBytes, nanoCPUs: limits.NanoCPUs });
      } catch (err) { throw new PrepareError((err as Error).message); }
      plan.cgroupProcs = cgroup.dirs.map((d) => join(d, 'cgroup.procs'));
    }
    // The native shim joins them itself: one program fewer to start per task (~4 ms of CPU each on
    // the bench host, where a fork and exec cost that much).
    const cgroupProcs = (await this.spawner()).native ? plan.cgroupProcs : [];
    if (cgroupProcs.length) plan.cgroupProcs = [];
    const argv = launchArgv(p.Command, plan, tools);
    const shimSpec: ShimSpec = {
      command: p.Command, env, logMaxBytes: this.opts.logMaxBytes ?? 16 << 20,
      dir: p.Dir ?? workDir,
      ...(argv.length !== p.Command.length ? { argv } : {}),
      ...(cgroup ? { cgroup } : {}),
      ...(cgroupProcs.length ? { cgroupProcs } : {}),
      ...(switching && !viaSetpriv ? { uid: switching.uid, gid: switching.gid } : {}),
      ...(netns ? { netns } : {}),
    };
    await writeJsonAtomicAsync(path(this.#dir, 'spec'), shimSpec);
    this.#specRead = shimSpec;
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (!existsSync(path(this.#dir, 'spec'))) throw new StartError(`task ${this.task.ID}: start before prepare`);
    if (this.#child() || this.#exit() || this.#shimAlive()) return this.#awaitStarted(signal); // idempotent
    if (process.env[SHIM_ENV]) {
      // We are a shim whose executable did not dispatch `__process-shim` to runShim(): starting
      // another shim would recurse without end.
      throw new StartError(`refusing to start a process shim from inside one: the executable does not handle "${SHIM_ARG}"`);
    }
    const chosen = await this.spawner();
    if (chosen.launcher) {
      try {
        this.#events = chosen.launcher.spawn(this.#dir);
      } catch (err) {
        throw new StartError(`cannot start the process shim ${chosen.cmd[0]} through its launcher: ${(err as Error).message}`);
      }
      await this.#awaitStarted(signal);
      this.ctx.log(`started ${JSON.stringify(this.#spec.Command)} as pid ${this.#child()?.pid}`);
      return;
    }
    const cmd = [...chosen.cmd, this.#dir];
    const shimLog = openSync(path(this.#dir, 'shimLog'), 'a', 0o600);
    try {
      // No pipes to the daemon: the shim must not get SIGPIPE when the daemon dies.
      this.#shimProc = Bun.spawn(cmd, {
        detached: true, stdin: 'ignore', stdout: shimLog, stderr: shimLog, env: { ...process.env, [SHIM_ENV]: '1' },
      });
    } catch (err) {
      throw new StartError(`cannot start the process shim ${cmd[0]}: ${(err as Error).message}`);
    } finally { closeSync(shimLog); }
    this.#shimProc.unref(); // the daemon may exit while tasks run on
    await this.#awaitStarted(signal);
    this.ctx.log(`started ${JSON.stringify(this.#spec.Command)} as pid ${this.#child()?.pid}`);
  }

  async #awaitStarted(signal: AbortSignal): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    const ev = this.#events;
    const began = Date.now();
    // The shim says when it is worth looking (its launcher, when the shim dies first).
    if (ev && !ev.lost) {
      const heard = new AbortController();
      await Promise.race([ev.started, pause(timeoutMs, AbortSignal.any([signal, heard.signal]))]);
      heard.abort();
    }
    const seen = await pollUntil(() => {
      const exit = this.#exit();
      if (exit) return exit;
      if (this.#launched()) return true;
      // The shim died without a word: it could not even read its spec.
      if (!this.#shimAlive() && !this.#exit() && !this.#child()) return 'shim-died' as const;
      return undefined;
    }, { intervalMs: POLL_MS, timeoutMs: Math.max(0, timeoutMs - (Date.now() - began)), signal });
    if (seen === undefined) {
      const netns = this.#shimSpec()?.netns;
      const where = netns && this.#child() ? ` in network namespace ${netns}` : '';
      throw new StartError(`task ${this.task.ID}: the process did not start${where} within ${timeoutMs} ms (see ${path(this.#dir, 'shimLog')})`);
    }
    if (seen === 'shim-died') throw new StartError(`task ${this.task.ID}: the process shim exited early (see ${path(this.#dir, 'shimLog')})`);
    if (typeof seen === 'object' && seen.startError) throw new StartError(seen.startError);
  }

  async wait(signal: AbortSignal): Promise<ExitStatus> {
    for (;;) {
      const exit = this.#exit();
      if (exit?.startError) throw new StartError(exit.startError);
      if (exit) return { exitCode: exit.exitCode, ...(exit.signal ? { signal: exit.signal } : {}), message: exit.message };
      signal.throwIfAborted();
      if (!this.#child() && !this.#shimAlive()) throw new StartError(`task ${this.task.ID}: not started`);
      if (!this.#shimAlive()) {
        // The shim is gone but left no exit status (it was killed): wait for the group to end.
        if (this.#exit()) continue;
        const child = this.#child();
        if (!isAlive(child)) return { exitCode: 255, message: 'exit status unknown: the process shim died' };
      }
      const ev = this.#events;
      if (ev && !ev.lost) await Promise.race([ev.exited, pause(EVENT_FALLBACK_MS, signal)]);
      else if (this.#shimProc && this.#shimAlive()) await Promise.race([this.#shimProc.exited, pause(1_000, signal)]);
      else await pause(EXIT_POLL_MS, signal);
    }
  }

  stop(graceMs: number): Promise<void> {
    this.#stopping ??= this.#stop(graceMs)
      .then(() => this.#killCgroup())
      .finally(() => { this.#stopping = undefined; });
    return this.#stopping;
  }

  /** Whatever of the task is still in its cgroup (left its group, or outlived a dead shim) goes. */
  async #killCgroup(): Promise<void> {
    const cg = this.#removed ? undefined : this.#cgroup();
    if (cg && !(await killCgroup(cg))) this.ctx.log(`cgroup ${cg.dirs[0]}: processes survive SIGKILL`);
  }

  async #stop(graceMs: number): Promise<void> {
    if (this.#removed || this.#exit()) return;
    let child = this.#child();
    if (!child && this.#shimAlive() && !existsSync(path(this.#dir, 'spec'))) {
      this.#killShim(); // its task dir is gone: nothing will ever start
      return;
    }
    if (!child && this.#shimAlive()) {
      // Mid-start: let the shim get the program going, so there is a group to stop.
      await pollUntil(() => this.#child() ?? this.#exit(), { intervalMs: POLL_MS, timeoutMs: KILL_WAIT_MS });
      child = this.#child();
      if (!child) { this.#killShim(); return; }
    }
    if (!child || this.#exit()) return;
    // A group is only signalled while its leader or its shim lives: never a reused pid's group.
    if (!isAlive(child) && !this.#shimAlive()) return;
    const sig = signalName(this.#spec.StopSignal ?? 'SIGTERM') ?? 'SIGTERM';
    // Ended: the shim recorded the exit, or (shim gone) the program is no longer alive.
    const ended = () => (this.#exit() || (!this.#shimAlive() && !isAlive(child)) ? true : undefined);
    if (killGroup(child.pid, sig)) {
      this.ctx.log(`sent ${sig} to process group ${child.pid}; grace ${graceMs} ms`);
      if (await pollUntil(ended, { intervalMs: POLL_MS, timeoutMs: graceMs })) return;
    }
    if (this.#exit()) return;
    if (killGroup(child.pid, 'SIGKILL')) this.ctx.log(`sent SIGKILL to process group ${child.pid}`);
    await this.#killCgroup();
    if (await pollUntil(ended, { intervalMs: POLL_MS, timeoutMs: KILL_WAIT_MS })) return;
    // No exit record although the group was killed: the shim itself is stuck or gone.
    this.#killShim();
  }

  #killShim(): void {
    const shim = this.#shim();
    // A supervisor of many tasks is never killed for one task's sake: the task's group and cgroup
    // were killed already, and the others' supervision would go with it.
    if (shim?.shared) {
      if (isAlive(shim)) this.ctx.log(`task ${this.task.ID}: its supervisor (pid ${shim.pid}) did not record the task's end; left running for its other tasks`);
      return;
    }
    if (shim && isAlive(shim)) { try { process.kill(shim.pid, 'SIGKILL'); } catch { /* gone */ } }
    this.#shimProc?.kill('SIGKILL');
  }

  async remove(): Promise<void> {
    if (this.#removed) return;
    await this.stop(0);
    // The shim writes exit.json just before it exits: let it finish before its files go.
    await pollUntil(() => (this.#shimAlive() ? undefined : true), { intervalMs: POLL_MS, timeoutMs: KILL_WAIT_MS });
    const cg = this.#cgroup();
    if (cg) {
      await killCgroup(cg);
      try { await removeCgroup(cg); } catch (err) { this.ctx.log((err as Error).message); }
    }
    this.#removed = true;
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async recover(): Promise<boolean> {
    if (this.#exit() || isAlive(this.#child())) return true;
    if (!this.#shimAlive()) return false;
    // The daemon died while the shim was starting the program: give it a moment to finish.
    const seen = await pollUntil(() => this.#child() ?? this.#exit(), { intervalMs: POLL_MS, timeoutMs: KILL_WAIT_MS });
    if (seen) return true;
    this.#killShim();
    return false;
  }

  logs(opts: LogOptions = {}): AsyncIterable<LogLine> {
    return readLogs(this.#dir, opts, () => !!this.#exit() || (!this.#shimAlive() && !isAlive(this.#child())));
  }

  /** The program's pid from child.json: no /proc scan (stats() walks every process to sum the group). */
  async pid(): Promise<number | undefined> {
    return this.#exit() ? undefined : this.#child()?.pid;
  }

  async stats(): Promise<TaskStats> {
    const child = this.#child();
    if (!child || this.#exit()) return {};
    const s = groupStats(child.pid);
    const cg = this.#cgroup();
    const memoryBytes = (cg && cgroupMemoryBytes(cg)) || s.memoryBytes;
    return s.count ? { cpuNanos: s.cpuNanos, memoryBytes, pid: child.pid } : { pid: child.pid };
  }
}

/** The command that starts a shim (the task dir appended), and for the native shim its launcher. */
interface ChosenShim {
  cmd: string[];
  /** The native shim (it joins the task's cgroups itself). */
  native: boolean;
  launcher?: ShimLauncher;
}

/** The native shim where it can be built, else the JavaScript one; says which, and why. */
async function chooseShim(opts: ProcessExecutorOptions, launcher: (shimPath: string) => ShimLauncher): Promise<ChosenShim> {
  const log = opts.log ?? (() => {});
  if (!opts.nativeShimDir) return { cmd: shimCommand(), native: false };
  const n = await nativeShim(opts.nativeShimDir);
  if ('path' in n) {
    log(`process executor: native shim ${n.path}${n.compiled ? ' (compiled now)' : ''}`);
    return { cmd: [n.path], native: true, launcher: launcher(n.path) };
  }
  log(`process executor: JavaScript shim (${n.reason})`);
  return { cmd: shimCommand(), native: false };
}

/** A resolv.conf naming `dns` as the nameservers; search domains and options come from the host's. */
export function resolvConf(dns: string[], hostFile = '/etc/resolv.conf'): string {
  let host = '';
  try { host = readFileSync(hostFile, 'utf8'); } catch { /* none: nameservers only */ }
  const kept = host.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l)).map((l) => l.trim());
  return [...dns.map((d) => `nameserver ${d}`), ...kept].join('\n') + '\n';
}
