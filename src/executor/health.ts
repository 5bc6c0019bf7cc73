/**
 * Health checks the worker runs itself, for executors that have none of their own (process, vm,
 * third-party ones): `ProcessSpec.Healthcheck` / `VMSpec.Healthcheck`, in Docker's shape. A
 * container's check is the engine's (see plugins/container), with the same rules:
 *
 *  - the task is running only once a probe succeeds: `start()` returns then, so a rolling update
 *    counts a replacement as up only when it is healthy;
 *  - `Retries` failed probes in a row (failures within `StartPeriod` not counted) make it
 *    unhealthy: it is stopped and fails with the last probe's output;
 *  - probes every `Interval` (every `StartInterval` during `StartPeriod`), each bounded by `Timeout`.
 *
 * The probe runs on the worker's host: `["CMD-SHELL", script]` as `/bin/sh -c script`,
 * `["CMD", prog, args…]` as is, with the task's environment and directory, and inside the task's
 * network namespace when the worker made one (overlay networks). A VM is reached over its network.
 */
import { spawn } from 'node:child_process';
import { NS_PER_MS, type HealthConfig, type TaskSpec } from '../types/index.ts';
import type { Controller, ExitStatus } from './contract.ts';
import { DelegatingController } from './delegate.ts';
import { ExecutorError } from './errors.ts';

/** Raised when the task's health check reports it unhealthy: the task fails. */
export class UnhealthyError extends ExecutorError {
  override name = 'UnhealthyError';
}

export const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0, startIntervalMs: 5_000 };
/** Bytes of a probe's output kept for the task's error. */
const OUTPUT_LIMIT = 4096;

export interface ProbeResult { ok: boolean; output: string }
export type Probe = (signal: AbortSignal) => Promise<ProbeResult>;

/** The health check a worker runs for this task spec; undefined when none (or `["NONE"]`). */
export function hostHealthcheck(spec: TaskSpec): HealthConfig | undefined {
  const hc = spec.ProcessSpec?.Healthcheck ?? spec.VMSpec?.Healthcheck;
  if (!hc?.Test?.length || hc.Test[0] === 'NONE') return undefined;
  return hc;
}

/** Why a HealthConfig cannot be run by the worker; null when it can. */
export function validateHostHealthcheck(hc: HealthConfig, field: string): string | null {
  const t = hc.Test ?? [];
  if (t.length === 0 || t[0] === 'NONE') return null;
  if (t[0] === 'CMD-SHELL' && t.length === 2 && t[1]) return null;
  if (t[0] === 'CMD' && t.length >= 2 && t[1]) return null;
  return `${field}.Test: expected ["CMD-SHELL", script], ["CMD", program, args…] or ["NONE"] (there is no image to inherit a check from)`;
}

export interface CommandProbeOptions {
  env: Record<string, string>;
  cwd?: string;
  /** `/run/netns/NAME`: the probe runs in this network namespace. */
  netns?: string;
  timeoutMs: number;
}

/** A probe that runs the check's command and counts exit code 0 as healthy. */
export function commandProbe(test: string[], o: CommandProbeOptions): Probe {
  const argv = test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test[1]!] : test.slice(1);
  const full = o.netns ? ['nsenter', `--net=${o.netns}`, '--', ...argv] : argv;
  return (signal) => new Promise<ProbeResult>((resolve) => {
    let output = '';
    const keep = (b: Buffer) => { if (output.length < OUTPUT_LIMIT) output += b.toString('utf8').slice(0, OUTPUT_LIMIT - output.length); };
    const bound = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, o.timeoutMs))]);
    const child = spawn(full[0]!, full.slice(1), { env: { ...process.env, ...o.env }, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'], signal: bound, killSignal: 'SIGKILL' });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => {
      const timedOut = !signal.aborted && bound.aborted;
      resolve({ ok: false, output: timedOut ? `health check timed out after ${o.timeoutMs} ms` : `health check could not run: ${err.message}` });
    });
    child.on('close', (code) => resolve({ ok: code === 0, output: output.trim() || `exit code ${code}` }));
  });
}

interface Timing { intervalMs: number; timeoutMs: number; retries: number; startPeriodMs: number; startIntervalMs: number }

export function healthTiming(hc: HealthConfig): Timing {
  const ms = (ns: number | undefined, dflt: number) => (ns && ns > 0 ? Math.max(1, Math.floor(ns / NS_PER_MS)) : dflt);
  return {
    intervalMs: ms(hc.Interval, HEALTH_DEFAULTS.intervalMs),
    timeoutMs: ms(hc.Timeout, HEALTH_DEFAULTS.timeoutMs),
    retries: hc.Retries && hc.Retries > 0 ? hc.Retries : HEALTH_DEFAULTS.retries,
    startPeriodMs: ms(hc.StartPeriod, HEALTH_DEFAULTS.startPeriodMs),
    startIntervalMs: ms(hc.StartInterval, Math.min(HEALTH_DEFAULTS.startIntervalMs, ms(hc.Interval, HEALTH_DEFAULTS.intervalMs))),
  };
}

/** Resolves after `ms`, or at once when `signal` aborts; the wait's bound is `ms`. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `ctl` with the health check's rules added to start and wait. */
export class HealthGate extends DelegatingController {
  readonly #t: Timing;
  #startedAt = 0;

  constructor(inner: Controller, hc: HealthConfig, private readonly probe: Probe, private readonly log: (msg: string) => void, private readonly graceMs: number) {
    super(inner);
    this.#t = healthTiming(hc);
  }

  pid(): Promise<number | undefined> { return this.inner.pid ? this.inner.pid() : this.inner.stats().then((s) => s.pid); }

  /** Started, then healthy: the first probe that succeeds; a task that exits first returns at once (wait reports it). */
  override async start(signal: AbortSignal): Promise<void> {
    await this.inner.start(signal);
    this.#startedAt = Date.now();
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    try {
      const exited = this.inner.wait(both).then(() => 'exited' as const, () => 'exited' as const);
      const verdict = await Promise.race([exited, this.#watch(both, true)]);
      signal.throwIfAborted();
      if (verdict !== 'exited' && verdict !== 'healthy') await this.#unhealthy(verdict.output);
    } finally { stop.abort(); }
  }

  /** Until the task ends, or turns unhealthy (then it is stopped and fails). */
  override async wait(signal: AbortSignal): Promise<ExitStatus> {
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    try {
      const exit = this.inner.wait(both).then((e) => ({ exit: e }));
      exit.catch(() => {}); // when the check wins, this wait is cut short and nobody reads it
      const r = await Promise.race([exit, this.#watch(both, false).then((v) => ({ v }))]);
      if ('exit' in r) return r.exit;
      signal.throwIfAborted();
      if (r.v === 'healthy' || r.v === 'exited') return (await exit).exit; // only when aborted
      return await this.#unhealthy(r.v.output);
    } finally { stop.abort(); }
  }

  /**
   * Probes until a verdict: `untilHealthy` returns at the first success; otherwise only an
   * unhealthy verdict (or the signal) ends it. Every wait here is bounded by the signal.
   */
  async #watch(signal: AbortSignal, untilHealthy: boolean): Promise<'healthy' | 'exited' | ProbeResult> {
    let failures = 0;
    for (let first = true; !signal.aborted; first = false) {
      const inStart = Date.now() - this.#startedAt < this.#t.startPeriodMs;
      if (!first || !untilHealthy) await pause(inStart && untilHealthy ? this.#t.startIntervalMs : this.#t.intervalMs, signal);
      if (signal.aborted) break;
      const r = await this.probe(signal);
      if (signal.aborted) break;
      if (r.ok) {
        failures = 0;
        if (untilHealthy) return 'healthy';
        continue;
      }
      if (Date.now() - this.#startedAt < this.#t.startPeriodMs) continue; // not counted while starting
      if (++failures >= this.#t.retries) return r;
    }
    return 'exited';
  }

  async #unhealthy(output: string): Promise<never> {
    const why = `task unhealthy after ${this.#t.retries} failed health check${this.#t.retries > 1 ? 's' : ''}: ${output}`;
    this.log(`${why}; stopping it`);
    await this.inner.stop(this.graceMs).catch((err) => this.log(`stop after unhealthy: ${(err as Error).message}`));
    throw new UnhealthyError(why);
  }
}
