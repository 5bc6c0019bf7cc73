import { expect, test } from 'bun:test';
import { collect, makeContext, makeTask } from '../../test/compliance/fixtures.ts';
import { createMockExecutor, ManualClock, newMockRegistry, type MockSpecExtras } from './index.ts';

const ms = (n: number) => n * 1_000_000;
const sig = () => new AbortController().signal;

function setup(spec: MockSpecExtras) {
  const clock = new ManualClock(10_000);
  const registry = newMockRegistry();
  const exec = createMockExecutor({ clock, registry });
  const task = makeTask({ Runtime: 'mock', MockSpec: spec });
  return { clock, registry, exec, task, ctl: exec.controller(task, makeContext('/unused')) };
}

test('time only passes with the injected clock', async () => {
  const { clock, ctl } = setup({ RunFor: ms(1_000), ExitCode: 2 });
  await ctl.prepare(sig());
  await ctl.start(sig());
  let exited = false;
  const waiting = ctl.wait(sig()).then((e) => { exited = true; return e; });
  clock.advance(999);
  await Promise.resolve();
  expect(exited).toBe(false);
  clock.advance(1);
  expect(await waiting).toEqual({ exitCode: 2, message: 'exit code 2' });
  const logs = await collect(ctl.logs({}));
  expect(logs[0]!.time).toBe(10_000);
  expect(logs.at(-1)).toEqual({ stream: 'stdout', time: 11_000, line: 'exiting: exit code 2' });
});

test('IgnoreStop: stop resolves only when the grace period has passed on the clock', async () => {
  const { clock, ctl } = setup({ IgnoreStop: true });
  await ctl.prepare(sig());
  await ctl.start(sig());
  let stopped = false;
  const stopping = ctl.stop(5_000).then(() => { stopped = true; });
  clock.advance(4_999);
  await Promise.resolve();
  expect(stopped).toBe(false);
  clock.advance(1);
  await stopping;
  expect(await ctl.wait(sig())).toEqual({ exitCode: 137, signal: 'SIGKILL', message: 'killed by SIGKILL' });
});

test('clearing the registry is a host reboot: nothing to recover', async () => {
  const { registry, exec, task, ctl } = setup({});
  await ctl.prepare(sig());
  await ctl.start(sig());
  expect(await exec.controller(task, makeContext('/unused')).recover()).toBe(true);
  registry.clear();
  expect(await exec.controller(task, makeContext('/unused')).recover()).toBe(false);
});

test('prepare and start errors carry the spec message; validate names fields', async () => {
  const a = setup({ PrepareError: 'image "x" not found' });
  await expect(a.ctl.prepare(sig())).rejects.toThrow('image "x" not found');
  const v = createMockExecutor().validate;
  expect(v({ Runtime: 'mock', MockSpec: { RunFor: -1 } })).toContain('MockSpec.RunFor');
  expect(v({ Runtime: 'mock', MockSpec: { StopGracePeriod: Number.NaN } })).toContain('MockSpec.StopGracePeriod');
  expect(v({ Runtime: 'mock' })).toBeNull();
});

test('an unhealthy fingerprint can be configured for scheduler tests', async () => {
  const exec = createMockExecutor({ fingerprint: { healthy: false, message: 'disabled' } });
  expect(await exec.fingerprint()).toMatchObject({ healthy: false, message: 'disabled' });
});
