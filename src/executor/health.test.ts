import { describe, expect, test } from 'bun:test';
import { NS_PER_MS } from '../types/index.ts';
import type { Controller, ExitStatus } from './contract.ts';
import { commandProbe, HealthGate, hostHealthcheck, type ProbeResult, UnhealthyError, validateHostHealthcheck } from './health.ts';

/** A controller whose work ends when `exit()` is called; counts stops. */
function fakeController() {
  let end!: (e: ExitStatus) => void;
  const ended = new Promise<ExitStatus>((r) => { end = r; });
  const calls = { stop: 0 };
  const ctl: Controller = {
    prepare: async () => {},
    start: async () => {},
    wait: (signal) => Promise.race([ended, new Promise<never>((_, rej) => signal.addEventListener('abort', () => rej(signal.reason), { once: true }))]),
    stop: async () => { calls.stop++; end({ exitCode: 143, signal: 'SIGTERM', message: 'killed' }); },
    remove: async () => {},
    recover: async () => true,
    logs: async function* () {},
    stats: async () => ({}),
  };
  return { ctl, calls, exit: (e: ExitStatus) => end(e) };
}

/** A probe answering from a script of results (the last one repeats). */
function scripted(...results: boolean[]) {
  let n = 0;
  const probe = async (): Promise<ProbeResult> => {
    const ok = results[Math.min(n, results.length - 1)]!;
    n++;
    return { ok, output: ok ? 'ok' : `probe ${n} failed` };
  };
  return { probe, count: () => n };
}

const fast = { Test: ['CMD-SHELL', 'true'], Interval: NS_PER_MS, Retries: 3 };
const never = new AbortController().signal;

describe('HealthGate', () => {
  test('start returns at the first healthy probe', async () => {
    const f = fakeController();
    const p = scripted(false, false, true);
    await new HealthGate(f.ctl, fast, p.probe, () => {}, 10).start(never);
    expect(p.count()).toBe(3);
    expect(f.calls.stop).toBe(0);
  });

  test('Retries failures in a row: stopped, and start fails naming the last output', async () => {
    const f = fakeController();
    const p = scripted(false);
    const gate = new HealthGate(f.ctl, fast, p.probe, () => {}, 10);
    const err = await gate.start(never).catch((e) => e);
    expect(err).toBeInstanceOf(UnhealthyError);
    expect(err.message).toBe('task unhealthy after 3 failed health checks: probe 3 failed');
    expect(f.calls.stop).toBe(1);
  });

  test('a task that exits while starting: start returns and wait reports the exit', async () => {
    const f = fakeController();
    const gate = new HealthGate(f.ctl, { ...fast, Interval: 60_000 * NS_PER_MS }, scripted(false).probe, () => {}, 10);
    const started = gate.start(never);
    f.exit({ exitCode: 3, message: 'exit code 3' });
    await started;
    expect(await gate.wait(never)).toMatchObject({ exitCode: 3 });
  });

  test('wait: turning unhealthy fails the task; a healthy one waits for its exit', async () => {
    const f = fakeController();
    const sick = new HealthGate(f.ctl, fast, scripted(true, true, false).probe, () => {}, 10);
    await sick.start(never);
    const err = await sick.wait(never).catch((e) => e);
    expect(err).toBeInstanceOf(UnhealthyError);
    expect(f.calls.stop).toBe(1);

    const g = fakeController();
    const p = scripted(true);
    const well = new HealthGate(g.ctl, fast, p.probe, () => {}, 10);
    await well.start(never);
    const waiting = well.wait(never);
    const until = Date.now() + 10_000;
    while (p.count() < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 1)); // a few probes pass
    g.exit({ exitCode: 0, message: 'finished' });
    expect(await waiting).toMatchObject({ exitCode: 0 });
  });

  test('failures within StartPeriod do not count', async () => {
    const f = fakeController();
    const p = scripted(false, false, false, false, true);
    await new HealthGate(f.ctl, { ...fast, Retries: 1, StartPeriod: 60_000 * NS_PER_MS, StartInterval: NS_PER_MS }, p.probe, () => {}, 10).start(never);
    expect(p.count()).toBe(5);
  });
});

describe('commandProbe', () => {
  const opts = { env: { WHO: 'probe' }, timeoutMs: 5_000 };
  test('exit code 0 is healthy; otherwise the output is kept', async () => {
    expect((await commandProbe(['CMD-SHELL', 'test "$WHO" = probe'], opts)(never)).ok).toBe(true);
    expect(await commandProbe(['CMD-SHELL', 'echo not ready >&2; exit 1'], opts)(never)).toEqual({ ok: false, output: 'not ready' });
    expect((await commandProbe(['CMD', '/bin/false'], opts)(never)).ok).toBe(false);
  });
  test('a probe that runs past its Timeout is unhealthy', async () => {
    const r = await commandProbe(['CMD-SHELL', 'exec sleep 30'], { ...opts, timeoutMs: 100 })(never);
    expect(r).toEqual({ ok: false, output: 'health check timed out after 100 ms' });
  });
});

describe('which checks the worker runs', () => {
  test('ProcessSpec / VMSpec checks; NONE or none: no check', () => {
    expect(hostHealthcheck({ ProcessSpec: { Command: ['x'], Healthcheck: fast } })).toEqual(fast);
    expect(hostHealthcheck({ VMSpec: { Kernel: 'k', Healthcheck: fast } })).toEqual(fast);
    expect(hostHealthcheck({ ProcessSpec: { Command: ['x'], Healthcheck: { Test: ['NONE'] } } })).toBeUndefined();
    expect(hostHealthcheck({ ContainerSpec: { Image: 'i', Healthcheck: fast } })).toBeUndefined();
  });
  test('a test with nothing to run is refused, naming the field', () => {
    expect(validateHostHealthcheck({ Test: ['CMD-SHELL', 'true'] }, 'ProcessSpec.Healthcheck')).toBeNull();
    expect(validateHostHealthcheck({ Test: ['CMD-SHELL'] }, 'ProcessSpec.Healthcheck')).toStartWith('ProcessSpec.Healthcheck.Test: expected');
    expect(validateHostHealthcheck({ Test: ['WGET', 'x'] }, 'VMSpec.Healthcheck')).toStartWith('VMSpec.Healthcheck.Test:');
  });
});
