import { describe, expect, test } from 'bun:test';
import { createMockExecutor, ManualClock, newMockRegistry } from '../../plugins/mock/index.ts';
import { makeContext, makeTask } from '../../test/compliance/fixtures.ts';
import type { TaskSpec, TaskState } from '../types/index.ts';
import type { Controller } from './contract.ts';
import { step, TaskDriver, toTaskStatus, type StepResult } from './driver.ts';

const ms = (n: number) => n * 1_000_000;

function setup(spec: TaskSpec['MockSpec'] & { IgnoreStop?: boolean } = {}) {
  const clock = new ManualClock(1_000);
  const registry = newMockRegistry();
  const exec = createMockExecutor({ clock, registry });
  const task = makeTask({ Runtime: 'mock', MockSpec: spec });
  const ctl = exec.controller(task, makeContext('/nonexistent'));
  return { clock, registry, exec, task, ctl };
}

async function drain(driver: TaskDriver, signal = new AbortController().signal, until?: (s: StepResult) => boolean) {
  const seen: StepResult[] = [];
  for await (const s of driver.run(signal)) {
    seen.push(s);
    if (until?.(s)) break;
  }
  return seen;
}

const states = (rs: StepResult[]) => rs.map((r) => r.state);
const opts = { signal: new AbortController().signal, graceMs: 100 };

describe('step', () => {
  test('walks assigned → running one step at a time', async () => {
    const { ctl } = setup();
    let s: TaskState = 'assigned';
    const seen: TaskState[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await step(s, 'running', ctl, opts);
      if (r === null || r.state === 'running') { if (r) seen.push(r.state); break; }
      s = r.state; seen.push(s);
    }
    expect(seen).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running']);
  });

  test('stops at the desired state (ready) and does nothing for terminal tasks', async () => {
    const { ctl } = setup();
    expect(await step('ready', 'ready', ctl, opts)).toBeNull();
    expect(await step('complete', 'running', ctl, opts)).toBeNull();
    expect(await step('failed', 'shutdown', ctl, opts)).toBeNull();
  });

  test('prepare error rejects; start error fails', async () => {
    const a = setup({ PrepareError: 'no such image "x"' });
    expect(await step('preparing', 'running', a.ctl, opts)).toMatchObject({ state: 'rejected', err: 'no such image "x"' });
    const b = setup({ StartError: 'permission denied' });
    await b.ctl.prepare(opts.signal);
    expect(await step('starting', 'running', b.ctl, opts)).toMatchObject({ state: 'failed', err: 'permission denied' });
  });

  test('desired shutdown before start stops without running', async () => {
    const { ctl } = setup();
    expect(await step('ready', 'shutdown', ctl, opts)).toMatchObject({ state: 'shutdown' });
  });

  test('a terminal task never moves again, whatever the desired state', async () => {
    const ctl = { stop: async () => { throw new Error('must not be called'); } } as unknown as Controller;
    for (const s of ['complete', 'failed', 'rejected', 'shutdown'] as const) {
      expect(await step(s, 'shutdown', ctl, opts)).toBeNull();
      expect(await step(s, 'running', ctl, opts)).toBeNull();
    }
  });

  test('a failing stop fails the task with the reason', async () => {
    const ctl = { stop: async () => { throw new Error('EPERM'); } } as unknown as Controller;
    expect(await step('running', 'shutdown', ctl, opts)).toEqual({ state: 'failed', message: 'stop failed: EPERM', err: 'stop failed: EPERM' });
  });
});

describe('TaskDriver', () => {
  test('runs a task to completion on the mock clock', async () => {
    const { clock, ctl } = setup({ RunFor: ms(500), ExitCode: 0 });
    const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'running', graceMs: 100 });
    const seen = await drain(d, undefined, (s) => { if (s.state === 'running') clock.advance(500); return false; });
    expect(states(seen)).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', 'complete']);
    expect(d.observed).toBe('complete');
  });

  test('non-zero exit fails with the code', async () => {
    const { clock, ctl } = setup({ RunFor: ms(10), ExitCode: 3 });
    const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'running', graceMs: 100 });
    const seen = await drain(d, undefined, (s) => { if (s.state === 'running') clock.advance(10); return false; });
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ state: 'failed', exitCode: 3, message: 'exit code 3' });
  });

  test('setDesired(shutdown) interrupts wait and stops the task', async () => {
    const { ctl } = setup();
    const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'running', graceMs: 100 });
    const seen: StepResult[] = [];
    for await (const s of d.run(new AbortController().signal)) {
      seen.push(s);
      if (s.state === 'running') d.setDesired('shutdown');
    }
    expect(states(seen).slice(-2)).toEqual(['running', 'shutdown']);
    expect(seen.at(-1)!.exitCode).toBe(143);
    d.setDesired('running'); // stale: ignored
    expect(d.desired).toBe('shutdown');
  });

  test('pauses at desired ready, continues when desired becomes running', async () => {
    const { clock, ctl } = setup({ RunFor: ms(5) });
    const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'ready', graceMs: 100 });
    const seen: StepResult[] = [];
    for await (const s of d.run(new AbortController().signal)) {
      seen.push(s);
      if (s.state === 'ready') queueMicrotask(() => d.setDesired('running'));
      if (s.state === 'running') clock.advance(5);
    }
    expect(states(seen)).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', 'complete']);
  });

  test('aborting the run signal ends run and leaves the task running', async () => {
    const { ctl, registry, task } = setup();
    const ac = new AbortController();
    const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'running', graceMs: 100 });
    await drain(d, ac.signal, (s) => { if (s.state === 'running') queueMicrotask(() => ac.abort()); return false; });
    expect(d.observed).toBe('running');
    expect(registry.get(task.ID)?.phase).toBe('running');
  });

  test('recovering re-attaches a running task on a fresh controller', async () => {
    const { clock, registry, ctl, task } = setup({ RunFor: ms(50) });
    await ctl.prepare(opts.signal);
    await ctl.start(opts.signal);
    const exec2 = createMockExecutor({ clock, registry });
    const ctl2 = exec2.controller(task, makeContext('/nonexistent'));
    const d = new TaskDriver(ctl2, { observed: 'running', desired: 'running', graceMs: 100, recovering: true });
    const run = drain(d);
    clock.advance(50); // ends while the driver is re-attaching or waiting: either way it reports it
    expect(states(await run)).toEqual(['complete']);
  });

  test('recovering with nothing alive fails the task', async () => {
    const { ctl } = setup();
    const d = new TaskDriver(ctl, { observed: 'running', desired: 'running', graceMs: 100, recovering: true });
    const seen = await drain(d);
    expect(seen).toEqual([expect.objectContaining({ state: 'failed', message: 'task was not running after the daemon restarted' })]);
  });
});

test('TaskDriver.forTask takes states and grace period from the task', () => {
  const { ctl, task } = setup({ StopGracePeriod: ms(1500) });
  const d = TaskDriver.forTask({ ...task, DesiredState: 'shutdown', Status: { ...task.Status, State: 'running' } }, ctl);
  expect([d.observed, d.desired]).toEqual(['running', 'shutdown']);
});

test('toTaskStatus carries the error and exit code', () => {
  const now = new Date(0);
  expect(toTaskStatus({ state: 'failed', message: 'exit code 3', err: 'exit code 3', exitCode: 3 }, now)).toEqual({
    Timestamp: '1970-01-01T00:00:00.000Z', State: 'failed', Message: 'exit code 3', Err: 'exit code 3', ContainerStatus: { ExitCode: 3 },
  });
  expect(toTaskStatus({ state: 'running', message: 'started' }, now)).toEqual({ Timestamp: '1970-01-01T00:00:00.000Z', State: 'running', Message: 'started' });
  expect(toTaskStatus({ state: 'running', message: 'started', pid: 42 }, now).ContainerStatus).toEqual({ PID: 42 });
});

test('the pid of a started task comes from pid() when the controller has it, else from stats()', async () => {
  const { ctl } = setup();
  await step('preparing', 'running', ctl, opts);
  let statsCalls = 0;
  const withPid: Controller = Object.assign(Object.create(ctl) as Controller, {
    start: (s: AbortSignal) => ctl.start(s), pid: async () => 4242, stats: async () => { statsCalls++; return { pid: 1 }; },
  });
  expect((await step('starting', 'running', withPid, opts))!.pid).toBe(4242);
  expect(statsCalls).toBe(0);
  const withoutPid: Controller = Object.assign(Object.create(ctl) as Controller, {
    start: async () => {}, stats: async () => { statsCalls++; return { pid: 7 }; },
  });
  expect((await step('starting', 'running', withoutPid, opts))!.pid).toBe(7);
  expect(statsCalls).toBe(1);
});
