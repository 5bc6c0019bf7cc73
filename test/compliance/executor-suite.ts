/**
 * The executor compliance suite: what every executor must do, whatever it runs. An executor's test
 * file calls `executorCompliance(name, makeExecutor, specs)` with task specs that behave as
 * described in `ComplianceSpecs`.
 */
import { afterEach, describe, expect, test as bunTest } from 'bun:test';
import type { Controller, Executor } from '../../src/executor/contract.ts';
import { TaskDriver, type StepResult } from '../../src/executor/driver.ts';
import { StartError } from '../../src/executor/errors.ts';
import type { TaskSpec } from '../../src/types/index.ts';
import { collect, makeContext, makeTask, tempDir, waitFor } from './fixtures.ts';

export interface ComplianceSpecs {
  /** Writes at least two output lines, then exits 0 within a second or so. */
  exitZero: TaskSpec;
  /** Exits with code 3 soon. */
  exitThree: TaskSpec;
  /** Writes at least one line, then runs until stopped; ends promptly on the stop signal. */
  longRunning: TaskSpec;
  /** Ignores the stop signal, then writes a line, then runs until killed. */
  ignoresStop: TaskSpec;
  /** Passes validation but cannot start. */
  startFails: TaskSpec;
  /** Fails validation; `field` must appear in the message. */
  invalid: { spec: TaskSpec; field: string };
}

export interface ComplianceOptions {
  /** Per-test bound, for executors whose tasks take long to start (a VM under emulation). Default 5 s. */
  testTimeoutMs?: number;
  /** Names the suite when one runtime is run more than one way (the process executor's two shims). */
  variant?: string;
}

const ac = () => new AbortController().signal;
const GRACE_MS = 300;

/**
 * `makeExecutor` is called once per test and again to stand for the same node after a daemon
 * restart: executors it returns must share whatever survives a restart (task dirs, registries).
 */
export function executorCompliance(
  name: string, makeExecutor: () => Executor, specs: ComplianceSpecs, opts: ComplianceOptions = {},
): void {
  const test = (title: string, fn: () => Promise<void> | void) => bunTest(title, fn, opts.testTimeoutMs ?? 5_000);
  describe(`executor compliance: ${name}${opts.variant ? ` (${opts.variant})` : ''}`, () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

    /** A controller for a fresh task in a fresh task dir, removed after the test. */
    function setup(spec: TaskSpec, exec = makeExecutor()) {
      const dir = tempDir();
      const task = makeTask(spec);
      const ctx = makeContext(`${dir.path}/task`);
      const ctl = exec.controller(task, ctx);
      cleanups.push(() => dir[Symbol.dispose]());
      cleanups.push(() => ctl.remove());
      return { exec, task, ctx, ctl };
    }
    async function started(ctl: Controller) {
      await ctl.prepare(ac());
      await ctl.start(ac());
    }

    test('has the runtime name and a healthy fingerprint', async () => {
      const exec = makeExecutor();
      expect(exec.name).toBe(name);
      const fp = await exec.fingerprint(ac());
      expect(fp.healthy).toBe(true);
      expect(typeof fp.attributes).toBe('object');
    });

    test('validate accepts the good specs and names the bad field', () => {
      const exec = makeExecutor();
      for (const s of [specs.exitZero, specs.exitThree, specs.longRunning, specs.ignoresStop, specs.startFails]) {
        expect(exec.validate(s)).toBeNull();
      }
      const err = exec.validate(specs.invalid.spec);
      expect(err).toBeString();
      expect(err!).toContain(specs.invalid.field);
    });

    test('prepare, start, wait: exit 0', async () => {
      const { ctl } = setup(specs.exitZero);
      await started(ctl);
      const exit = await ctl.wait(ac());
      expect(exit.exitCode).toBe(0);
      expect(exit.signal).toBeUndefined();
    });

    test('a non-zero exit reports the code', async () => {
      const { ctl } = setup(specs.exitThree);
      await started(ctl);
      const exit = await ctl.wait(ac());
      expect(exit.exitCode).toBe(3);
      expect(exit.message).toContain('3');
    });

    test('driven by TaskDriver: complete, and failed with the exit code', async () => {
      for (const [spec, last] of [[specs.exitZero, 'complete'], [specs.exitThree, 'failed']] as const) {
        const { ctl } = setup(spec);
        const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'running', graceMs: GRACE_MS });
        const seen: StepResult[] = [];
        for await (const s of d.run(ac())) seen.push(s);
        expect(seen.map((s) => s.state)).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', last]);
        expect(seen.at(-1)!.exitCode).toBe(last === 'complete' ? 0 : 3);
      }
    });

    test('a start failure surfaces as StartError', async () => {
      const { ctl } = setup(specs.startFails);
      await ctl.prepare(ac());
      await expect(ctl.start(ac())).rejects.toBeInstanceOf(StartError);
    });

    test('stop ends a task that honours the stop signal well before the grace period', async () => {
      const { ctl } = setup(specs.longRunning);
      await started(ctl);
      // Its first line says it is up: a VM that is still booting has no one to hear the stop yet.
      await waitFor(async () => (await collect(ctl.logs({}))).length > 0, 'the first log line', opts.testTimeoutMs);
      // Honoured means the stop returns before the grace period would have ended in a kill (how much
      // before depends on the machine: a TCG guest under load takes seconds to power off).
      const graceMs = 20_000;
      const t0 = Date.now();
      await ctl.stop(graceMs);
      expect(Date.now() - t0).toBeLessThan(graceMs);
      const exit = await ctl.wait(AbortSignal.timeout(5_000));
      expect(exit.exitCode === 0 && !exit.signal).toBe(false);
    });

    test('stop waits out the grace period, then kills', async () => {
      const { ctl } = setup(specs.ignoresStop);
      await started(ctl);
      // Its first line says the stop signal is ignored now (a process sets that up after starting).
      await waitFor(async () => (await collect(ctl.logs({}))).length > 0, 'the first log line', opts.testTimeoutMs);
      const t0 = Date.now();
      await ctl.stop(GRACE_MS);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE_MS - 20);
      const exit = await ctl.wait(AbortSignal.timeout(5_000));
      expect(exit.signal).toBe('SIGKILL');
      expect(exit.exitCode).toBe(137);
    });

    test('stop is safe before prepare and start, and idempotent', async () => {
      const { ctl } = setup(specs.longRunning);
      await ctl.stop(GRACE_MS);
      await ctl.prepare(ac());
      await ctl.stop(GRACE_MS);
      const { ctl: running } = setup(specs.longRunning);
      await started(running);
      await Promise.all([running.stop(GRACE_MS), running.stop(GRACE_MS)]);
      await running.stop(GRACE_MS);
      await running.wait(AbortSignal.timeout(5_000));
    });

    test('wait gives up when its signal aborts, and the task keeps running', async () => {
      const { ctl } = setup(specs.longRunning);
      await started(ctl);
      const w = new AbortController();
      const p = ctl.wait(w.signal);
      w.abort();
      await expect(p).rejects.toBeDefined();
      expect(await ctl.recover()).toBe(true);
      await ctl.stop(GRACE_MS);
    });

    test('remove stops and cleans up: nothing to recover afterwards', async () => {
      const { ctl, exec, task, ctx } = setup(specs.longRunning);
      await started(ctl);
      await ctl.remove();
      await ctl.remove();
      expect(await exec.controller(task, ctx).recover()).toBe(false);
    });

    test('logs: everything, tail and since', async () => {
      const { ctl } = setup(specs.exitZero);
      await started(ctl);
      await ctl.wait(ac());
      const all = await collect(ctl.logs({}));
      expect(all.length).toBeGreaterThanOrEqual(2);
      for (const l of all) {
        expect(['stdout', 'stderr']).toContain(l.stream);
        expect(l.time).toBeNumber();
        expect(l.line).toBeString();
      }
      expect(await collect(ctl.logs({ tail: 1 }))).toEqual([all.at(-1)!]);
      expect(await collect(ctl.logs({ tail: 0 }))).toEqual([]);
      const since = all.at(-1)!.time;
      expect(await collect(ctl.logs({ since }))).toEqual(all.filter((l) => l.time >= since));
      expect(await collect(ctl.logs({ since: since + 60_000 }))).toEqual([]);
    });

    test('logs follow: streams until the task ends', async () => {
      const { ctl } = setup(specs.exitZero);
      await started(ctl);
      const followed = await collect(ctl.logs({ follow: true, signal: AbortSignal.timeout(Math.max(10_000, (opts.testTimeoutMs ?? 0) / 2)) }));
      const exit = await ctl.wait(AbortSignal.timeout(1_000));
      expect(exit.exitCode).toBe(0);
      expect(followed).toEqual(await collect(ctl.logs({})));
    });

    test('logs follow: ends when its signal aborts', async () => {
      const { ctl } = setup(specs.longRunning);
      await started(ctl);
      const stopFollowing = new AbortController();
      const lines: string[] = [];
      const done = (async () => { for await (const l of ctl.logs({ follow: true, signal: stopFollowing.signal })) lines.push(l.line); })();
      await waitFor(() => lines.length > 0, 'a first log line', opts.testTimeoutMs);
      stopFollowing.abort();
      await done;
      await ctl.stop(GRACE_MS);
    });

    test('recover re-attaches to a running task from a fresh executor and controller', async () => {
      const { ctl, task, ctx } = setup(specs.longRunning);
      await started(ctl);
      const again = makeExecutor().controller(task, ctx);
      expect(await again.recover()).toBe(true);
      const waiting = again.wait(AbortSignal.timeout(10_000));
      await again.stop(GRACE_MS);
      const exit = await waiting;
      expect(exit.exitCode === 0 && !exit.signal).toBe(false);
    });

    test('recover finds nothing for a task that never started', async () => {
      const { ctl } = setup(specs.longRunning);
      expect(await ctl.recover()).toBe(false);
      await ctl.prepare(ac());
      expect(await ctl.recover()).toBe(false);
    });

    test('stats while running', async () => {
      const { ctl, exec } = setup(specs.longRunning);
      await started(ctl);
      const s = await ctl.stats();
      expect(typeof s).toBe('object');
      if (exec.capabilities.stats) expect(s.cpuNanos ?? s.memoryBytes ?? s.pid).toBeDefined();
      await ctl.stop(GRACE_MS);
    });
  });
}
