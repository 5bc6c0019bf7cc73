/**
 * One task's container. The engine keeps everything that must survive a daemon restart: the
 * container is named `shoal-<task id>` and labelled with the task, so a fresh controller finds it
 * again. Only one fact lives in the task directory: that the container was stopped for being
 * unhealthy, so a recovered controller still reports why it failed.
 *
 * prepare = pull the image if missing + create the container; start = start it, hand its pid to
 * the worker (`TaskNetwork.started`: VIP rules in its namespace), then (when it has a health check)
 * wait until it is healthy; wait = until it exits or turns unhealthy.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import type {
  Controller, ExitStatus, LogLine, LogOptions, TaskContext, TaskStats,
} from '../../src/executor/contract.ts';
import { ExecutorError, PrepareError, StartError } from '../../src/executor/errors.ts';
import { pollUntil } from '../../src/executor/logs.ts';
import { stopGraceMs, type Task } from '../../src/types/index.ts';
import { containerEvents, engineMessage, healthOfEvent, isNotFound, pullImage, statusOf } from './engine.ts';
import { readLogs } from './read-logs.ts';
import { dockerNetworkName, endpointConfig, ensureNetwork, releaseNetwork, withNetworks } from './network.ts';
import { containerName, createOptions, LABEL_TASK, signalOfExitCode, validateContainerSpec } from './spec.ts';

/** Raised when the container's health check reports it unhealthy: the task fails. */
export class UnhealthyError extends ExecutorError {
  override name = 'UnhealthyError';
  constructor() { super('container unhealthy'); }
}

const KILL_WAIT_MS = 10_000;
const POLL_MS = 50;
const UNHEALTHY_MARK = 'container-unhealthy';

export class ContainerController implements Controller {
  readonly #name: string;
  #stopping?: Promise<void>;
  #removed = false;

  readonly #docker: () => Promise<Docker>;

  /** `docker`: the engine client, or how to get it (made on first use, see engineClient). */
  constructor(docker: Docker | (() => Promise<Docker>), readonly task: Task, readonly ctx: TaskContext) {
    this.#name = containerName(task.ID);
    this.#docker = typeof docker === 'function' ? docker : () => Promise.resolve(docker);
  }

  async #container() { return (await this.#docker()).getContainer(this.#name); }

  /** The container as the engine sees it; undefined when there is none (or it is not ours). */
  async #inspect(signal?: AbortSignal): Promise<ContainerInspectInfo | undefined> {
    try {
      const info = await (await this.#container()).inspect(signal ? { abortSignal: signal } : {});
      return info.Config?.Labels?.[LABEL_TASK] === this.task.ID ? info : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new ExecutorError(`container ${this.#name}: ${engineMessage(err)}`, { cause: err });
    }
  }

  /** The task's overlay attachments (empty: Docker's default network, as without shoal networks). */
  get #attachments() { return this.ctx.network?.attachments ?? []; }

  async prepare(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const invalid = validateContainerSpec(this.task.Spec);
    if (invalid) throw new PrepareError(invalid);
    const image = this.task.Spec.ContainerSpec!.Image;
    const docker = await this.#docker();
    // Networks, container and its other networks under the networks' locks: a remove() of another
    // task cannot take a network away in between.
    const create = () => withNetworks(this.#attachments.map(dockerNetworkName), async () => {
      for (const a of this.#attachments) {
        try { await ensureNetwork(docker, a, this.ctx.log, signal, this.task.NodeID); } catch (err) {
          signal.throwIfAborted();
          throw new PrepareError(`network ${a.name}: ${(err as Error).message}`, { cause: err });
        }
      }
      try {
        await docker.createContainer({ ...createOptions(this.task, this.ctx.env, this.ctx.network, this.ctx.files), abortSignal: signal } as never);
      } catch (err) {
        // 409: made by an earlier prepare (its other networks may still be missing).
        if (!(statusOf(err) === 409 && await this.#inspect(signal))) throw err;
      }
      await this.#connectOthers(docker, signal);
    });
    try {
      await create();
      return;
    } catch (err) {
      if (err instanceof PrepareError) throw err;
      if (!isNotFound(err) || /network .*not found/i.test(engineMessage(err))) {
        throw new PrepareError(`container ${this.#name}: ${engineMessage(err)}`, { cause: err });
      }
    }
    // 404 on create: the image is missing.
    this.ctx.log(`pulling ${image}`);
    try { await pullImage(docker, image, signal); } catch (err) {
      signal.throwIfAborted();
      throw new PrepareError(`ContainerSpec.Image: cannot pull "${image}": ${engineMessage(err)}`, { cause: err });
    }
    try { await create(); } catch (err) {
      if (err instanceof PrepareError) throw err;
      throw new PrepareError(`container ${this.#name}: ${engineMessage(err)}`, { cause: err });
    }
  }

  /** The second and later overlay networks, each at its fixed address (before start). */
  async #connectOthers(docker: Docker, signal: AbortSignal): Promise<void> {
    const rest = this.#attachments.slice(1);
    if (!rest.length) return;
    const info = await this.#inspect(signal);
    const joined = info?.NetworkSettings?.Networks ?? {};
    for (const a of rest) {
      const name = dockerNetworkName(a);
      if (joined[name]) continue;
      try {
        await docker.getNetwork(name).connect({ Container: this.#name, EndpointConfig: endpointConfig(a), abortSignal: signal } as never);
      } catch (err) {
        signal.throwIfAborted();
        throw new PrepareError(`container ${this.#name}: cannot join network ${a.name} at ${a.address}: ${engineMessage(err)}`, { cause: err });
      }
    }
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    try {
      await (await this.#container()).start({ abortSignal: signal });
    } catch (err) {
      signal.throwIfAborted();
      // 304: already started (a repeated start) is fine.
      if (statusOf(err) !== 304) {
        if (isNotFound(err)) throw new StartError(`task ${this.task.ID}: start before prepare (no container ${this.#name})`);
        throw new StartError(engineMessage(err), { cause: err });
      }
    }
    const info = await this.#inspect(signal);
    if (!info) throw new StartError(`container ${this.#name} vanished while starting`);
    this.ctx.log(`started container ${this.#name} (${info.Id.slice(0, 12)}) pid ${info.State.Pid}`);
    // Its namespace exists now: the worker writes its VIP rules there before anything waits for
    // health, so a container that needs another service (by VIP) to become healthy can reach it.
    if (info.State.Pid && this.ctx.network?.started) await this.ctx.network.started(info.State.Pid);
    if (hasHealthcheck(info)) await this.#untilHealthy(info, signal);
  }

  /** Swarm's rule: a task with a health check is running only once it is healthy. */
  async #untilHealthy(info: ContainerInspectInfo, signal: AbortSignal): Promise<void> {
    const hc = info.Config.Healthcheck!;
    const ms = (ns: number | undefined, dflt: number) => (ns ? ns / 1e6 : dflt);
    const boundMs = ms(hc.StartPeriod, 0) + (ms(hc.Interval, 30_000) + ms(hc.Timeout, 30_000)) * ((hc.Retries || 3) + 1) + 5_000;
    const bound = AbortSignal.any([signal, AbortSignal.timeout(boundMs)]);
    const quit = new AbortController();
    try {
      const events = await containerEvents(await this.#docker(), info.Id, ['health_status', 'die'], AbortSignal.any([bound, quit.signal]));
      for (let now = await this.#inspect(signal); ;) {
        if (!now || !isRunning(now)) return; // it ended: wait() reports how
        const health = now.State.Health?.Status;
        if (health === 'healthy') return;
        if (health === 'unhealthy') return await this.#failUnhealthy();
        const e = await events.next();
        signal.throwIfAborted();
        if (!e) { this.ctx.log(`no health status within ${Math.round(boundMs)} ms; treating it as running`); return; }
        now = await this.#inspect(signal);
      }
    } finally { quit.abort(); }
  }

  async #failUnhealthy(): Promise<never> {
    this.ctx.log(`container ${this.#name} is unhealthy; stopping it`);
    try {
      mkdirSync(this.ctx.taskDir, { recursive: true });
      writeFileSync(join(this.ctx.taskDir, UNHEALTHY_MARK), new Date().toISOString());
    } catch { /* the mark only helps a recovered controller say why */ }
    await this.stop(stopGraceMs(this.task.Spec));
    throw new UnhealthyError();
  }

  async wait(signal: AbortSignal): Promise<ExitStatus> {
    for (;;) {
      signal.throwIfAborted();
      let info = await this.#inspect(signal);
      if (!info) throw new ExecutorError(`container ${this.#name} is gone (removed outside shoal?)`);
      if (info.State.Status === 'created') throw new StartError(`task ${this.task.ID}: not started`);
      if (!isRunning(info)) {
        if (existsSync(join(this.ctx.taskDir, UNHEALTHY_MARK))) throw new UnhealthyError();
        return exitStatusOf(info);
      }
      const done = new AbortController();
      const both = AbortSignal.any([signal, done.signal]);
      try {
        const watchHealth = hasHealthcheck(info);
        const events = watchHealth ? await containerEvents(await this.#docker(), info.Id, ['health_status'], both) : undefined;
        if (events) {
          info = await this.#inspect(signal); // after subscribing: nothing can be missed in between
          if (info?.State.Health?.Status === 'unhealthy' && isRunning(info)) await this.#failUnhealthy();
        }
        const exited = (await this.#container()).wait({ condition: 'not-running', abortSignal: both }).then(() => 'exited' as const);
        const unhealthy = (async () => {
          for (let e = await events?.next(); e; e = await events!.next()) if (healthOfEvent(e) === 'unhealthy') return 'unhealthy' as const;
          return new Promise<never>(() => {}); // no health check: only the exit counts
        })();
        const what = await Promise.race([exited, unhealthy, aborted(signal)]);
        if (what === 'unhealthy') await this.#failUnhealthy();
      } catch (err) {
        signal.throwIfAborted();
        if (err instanceof ExecutorError) throw err;
        if (!isNotFound(err)) throw new ExecutorError(`waiting for container ${this.#name}: ${engineMessage(err)}`, { cause: err });
      } finally { done.abort(); }
    }
  }

  stop(graceMs: number): Promise<void> {
    this.#stopping ??= this.#stop(graceMs).finally(() => { this.#stopping = undefined; });
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    if (this.#removed) return;
    const info = await this.#inspect();
    if (!info || !isRunning(info)) return;
    const sig = (info.Config as { StopSignal?: string }).StopSignal || 'SIGTERM';
    if (!(await this.#kill(sig))) return;
    this.ctx.log(`sent ${sig} to container ${this.#name}; grace ${graceMs} ms`);
    if (await this.#untilStopped(graceMs)) return;
    if (!(await this.#kill('SIGKILL'))) return;
    this.ctx.log(`sent SIGKILL to container ${this.#name}`);
    if (!(await this.#untilStopped(KILL_WAIT_MS))) throw new ExecutorError(`container ${this.#name} did not stop within ${KILL_WAIT_MS} ms of SIGKILL`);
  }

  /** False when there was nothing to signal (the container is not running or gone). */
  async #kill(signal: string): Promise<boolean> {
    try {
      await (await this.#container()).kill({ signal });
      return true;
    } catch (err) {
      if (isNotFound(err) || statusOf(err) === 409) return false;
      throw new ExecutorError(`container ${this.#name}: ${sig(signal)}: ${engineMessage(err)}`, { cause: err });
    }
  }

  async #untilStopped(timeoutMs: number): Promise<boolean> {
    try {
      await (await this.#container()).wait({ condition: 'not-running', abortSignal: AbortSignal.timeout(Math.max(1, timeoutMs)) });
      return true;
    } catch (err) {
      if (isNotFound(err)) return true;
      // The wait was cut by its bound (or the connection dropped): ask the engine directly.
      const info = await this.#inspect();
      return !info || !isRunning(info);
    }
  }

  async remove(): Promise<void> {
    if (this.#removed) return;
    // The Docker networks to release afterwards: the task's, and any shoal one the container is on
    // (a controller made without `ctx.network` still cleans up).
    const networks = new Set(this.#attachments.map(dockerNetworkName));
    try {
      const info = await this.#inspect();
      for (const n of Object.keys(info?.NetworkSettings?.Networks ?? {})) if (n.startsWith('shoal-')) networks.add(n);
    } catch { /* the removal below reports an unreachable engine */ }
    await withNetworks([...networks], async () => {
      try {
        await (await this.#container()).remove({ force: true, v: true });
      } catch (err) {
        // 409: a removal is already in progress; wait for it to finish.
        if (statusOf(err) === 409) {
          await pollUntil(async () => ((await this.#inspect()) ? undefined : true), { intervalMs: POLL_MS, timeoutMs: KILL_WAIT_MS });
        } else if (!isNotFound(err)) {
          throw new ExecutorError(`cannot remove container ${this.#name}: ${engineMessage(err)}`, { cause: err });
        }
      }
      if (networks.size) {
        const docker = await this.#docker();
        for (const n of networks) await releaseNetwork(docker, n, this.ctx.log);
      }
    });
    this.#removed = true;
    rmSync(join(this.ctx.taskDir, UNHEALTHY_MARK), { force: true });
    this.ctx.log(`removed container ${this.#name}`);
  }

  async recover(): Promise<boolean> {
    const info = await this.#inspect();
    // Created but never started: there is nothing to re-attach to (the driver fails the task).
    return !!info && info.State.Status !== 'created';
  }

  logs(opts: LogOptions = {}): AsyncIterable<LogLine> {
    const container = () => this.#container();
    const inspect = () => this.#inspect();
    return (async function* () { yield* readLogs(await container(), inspect, opts); })();
  }

  /** From an inspect: the engine's stats call can take hundreds of ms, too slow for the start path. */
  async pid(): Promise<number | undefined> {
    const info = await this.#inspect();
    return info && isRunning(info) && info.State.Pid ? info.State.Pid : undefined;
  }

  /**
   * Where this host reaches the container: its address on the first overlay network, else on
   * Docker's default bridge; undefined when it has none (not running, host network).
   */
  async address(): Promise<string | undefined> {
    const info = await this.#inspect();
    if (!info) return undefined;
    const nets = info.NetworkSettings?.Networks ?? {};
    const first = this.#attachments[0];
    if (first) return nets[dockerNetworkName(first)]?.IPAddress || undefined;
    return (info.NetworkSettings as { IPAddress?: string } | undefined)?.IPAddress || nets.bridge?.IPAddress || undefined;
  }

  async stats(): Promise<TaskStats> {
    const info = await this.#inspect();
    if (!info || !isRunning(info)) return {};
    const pid = info.State.Pid || undefined;
    try {
      const s = await (await this.#container()).stats({ stream: false, 'one-shot': true });
      const mem = s.memory_stats;
      // The engine's "usage" counts page cache; `docker stats` subtracts it, so do we.
      const cache = (mem?.stats as Record<string, number> | undefined)?.total_inactive_file
        ?? (mem?.stats as Record<string, number> | undefined)?.inactive_file ?? 0;
      return {
        ...(s.cpu_stats?.cpu_usage?.total_usage !== undefined ? { cpuNanos: s.cpu_stats.cpu_usage.total_usage } : {}),
        ...(mem?.usage !== undefined ? { memoryBytes: Math.max(0, mem.usage - cache) } : {}),
        ...(pid ? { pid } : {}),
      };
    } catch {
      return pid ? { pid } : {};
    }
  }
}

const sig = (s: string) => (s.startsWith('SIG') ? s : `SIG${s}`);

export function isRunning(info: ContainerInspectInfo): boolean {
  return info.State.Running || info.State.Status === 'paused' || info.State.Status === 'restarting';
}

export function hasHealthcheck(info: ContainerInspectInfo): boolean {
  const test = info.Config.Healthcheck?.Test;
  return !!test && test.length > 0 && test[0] !== 'NONE';
}

/** How an exited container ended, in the contract's terms (128+N → killed by signal N). */
export function exitStatusOf(info: ContainerInspectInfo): ExitStatus {
  const exitCode = info.State.ExitCode;
  const signal = signalOfExitCode(exitCode);
  const why = info.State.OOMKilled ? ' (out of memory: killed by the kernel)' : info.State.Error ? ` (${info.State.Error})` : '';
  return {
    exitCode, ...(signal ? { signal } : {}),
    message: `${signal ? `killed by ${signal}, exit code ${exitCode}` : `exit code ${exitCode}`}${why}`,
  };
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
