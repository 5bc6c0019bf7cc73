/** Process-executor behaviour beyond the compliance suite: process groups, crashes, users, logs. */
import { afterEach, expect, test } from 'bun:test';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Controller } from '../../src/executor/contract.ts';
import { TaskDriver } from '../../src/executor/driver.ts';
import { PrepareError } from '../../src/executor/errors.ts';
import type { ProcessSpec, TaskSpec } from '../../src/types/index.ts';
import { collect, makeContext, makeTask, tempDir, waitFor } from '../../test/compliance/fixtures.ts';
import { groupMembers, isAlive, path, readJson, type PidRecord } from './files.ts';
import { createProcessExecutor, shimCommand, SHIM_ARG } from './index.ts';
import { runShim } from './shim.ts';

import { testShim } from './testdata/shims.ts';

const shim = await testShim();
const signal = () => AbortSignal.timeout(10_000);
const cleanups: (() => unknown)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

function setup(p: ProcessSpec, opts: { logMaxBytes?: number } = {}) {
  const dir = tempDir();
  const exec = createProcessExecutor({ shimCommand: shim, ...opts });
  const task = makeTask({ Runtime: 'process', ProcessSpec: p });
  const ctx = makeContext(join(dir.path, 'task'));
  const ctl = exec.controller(task, ctx);
  cleanups.push(() => dir[Symbol.dispose](), () => ctl.remove());
  return { exec, task, ctx, ctl, dir: dir.path };
}
const sh = (script: string, more: Partial<ProcessSpec> = {}): ProcessSpec => ({ Command: ['/bin/sh', '-c', script], ...more });

async function started(ctl: Controller) { await ctl.prepare(signal()); await ctl.start(signal()); }

const childOf = (taskDir: string) => readJson<PidRecord>(path(taskDir, 'child'))!;
const lines = async (ctl: Controller) => (await collect(ctl.logs({}))).map((l) => l.line);

test('stop leaves nothing of the process group behind', async () => {
  const { ctl, ctx } = setup(sh('sleep 100 & sleep 100 & echo forked; wait'));
  await started(ctl);
  const pgid = childOf(ctx.taskDir).pid;
  await waitFor(() => groupMembers(pgid).length >= 3, 'the shell and its two sleeps');
  await ctl.stop(2_000);
  expect(groupMembers(pgid)).toEqual([]);
  expect((await ctl.wait(signal())).message).toBe('killed by SIGTERM');
});

test('stop kills the group with SIGKILL when the stop signal is ignored, children included', async () => {
  const { ctl, ctx } = setup(sh("trap '' TERM; (trap '' TERM; sleep 100) & sleep 100 & wait"));
  await started(ctl);
  const pgid = childOf(ctx.taskDir).pid;
  await waitFor(() => groupMembers(pgid).length >= 3, 'the shell and its children');
  await ctl.stop(100);
  expect(groupMembers(pgid)).toEqual([]);
  expect(await ctl.wait(signal())).toEqual({ exitCode: 137, signal: 'SIGKILL', message: 'killed by SIGKILL' });
});

test('when the program exits, what it left running in its group is killed', async () => {
  const { ctl, ctx } = setup(sh('sleep 100 & echo bye'));
  await started(ctl);
  expect((await ctl.wait(signal())).exitCode).toBe(0);
  expect(groupMembers(childOf(ctx.taskDir).pid)).toEqual([]);
});

test('a custom StopSignal reaches the program', async () => {
  const { ctl } = setup(sh("trap 'echo got usr1; exit 0' USR1; echo up; while :; do sleep 0.05; done", { StopSignal: 'USR1' }));
  await started(ctl);
  await waitFor(async () => (await lines(ctl)).includes('up'), 'the trap to be set');
  await ctl.stop(5_000);
  expect(await ctl.wait(signal())).toEqual({ exitCode: 0, message: 'exit code 0' });
  expect(await lines(ctl)).toContain('got usr1');
});

test('Env, Dir and the worker-provided env reach the program; the spec wins', async () => {
  const { dir } = setup(sh('true'));
  const work = join(dir, 'work');
  mkdirSync(work);
  const exec = createProcessExecutor({ shimCommand: shim });
  const ctl = exec.controller(makeTask({ Runtime: 'process', ProcessSpec: sh('echo "$FOO $BAR"; pwd', { Env: ['FOO=spec'], Dir: work }) }),
    { taskDir: join(dir, 't2'), env: { FOO: 'worker', BAR: 'worker' }, log: () => {} });
  cleanups.push(() => ctl.remove());
  await started(ctl);
  await ctl.wait(signal());
  expect(await lines(ctl)).toEqual(['spec worker', work]);
});

test('prepare errors name the field: missing Dir, unknown user', async () => {
  for (const [p, msg] of [
    [sh('true', { Dir: '/nonexistent/dir' }), 'ProcessSpec.Dir: /nonexistent/dir is not a directory'],
    [sh('true', { User: 'no-such-user-x' }), 'ProcessSpec.User: no user "no-such-user-x"'],
  ] as const) {
    const { ctl } = setup(p);
    const err = await ctl.prepare(signal()).catch((e) => e);
    expect(err).toBeInstanceOf(PrepareError);
    expect(err.message).toContain(msg);
  }
});

test.if(process.getuid?.() === 0)('User switches identity when the daemon runs as root', async () => {
  const { ctl } = setup({ Command: ['/bin/sh', '-c', 'id -u; id -g'], User: '65534:65534' });
  await started(ctl);
  await ctl.wait(signal());
  expect(await lines(ctl)).toEqual(['65534', '65534']);
});

test('validate names the field', () => {
  const v = createProcessExecutor({ shimCommand: shim }).validate;
  const p = (x: object): TaskSpec => ({ Runtime: 'process', ProcessSpec: { Command: ['x'], ...x } as ProcessSpec });
  expect(v({ Runtime: 'process' })).toContain('TaskTemplate.ProcessSpec');
  expect(v(p({ Env: ['A=1', 'nope'] }))).toContain('ProcessSpec.Env[1]');
  expect(v(p({ Dir: 'relative' }))).toContain('ProcessSpec.Dir');
  expect(v(p({ User: 'a:b:c' }))).toContain('ProcessSpec.User');
  expect(v(p({ StopSignal: 'SIGNOPE' }))).toContain('ProcessSpec.StopSignal');
  expect(v(p({ StopSignal: 'hup' }))).toBeNull();
  expect(v(p({ StopGracePeriod: -1 }))).toContain('ProcessSpec.StopGracePeriod');
});

test('logs rotate past logMaxBytes and what is kept is the newest, in order', async () => {
  const { ctl, ctx } = setup(sh('i=1; while [ $i -le 200 ]; do echo "line $i"; i=$((i+1)); done'), { logMaxBytes: 2_000 });
  await started(ctl);
  await ctl.wait(signal());
  expect(existsSync(path(ctx.taskDir, 'logPrev'))).toBe(true);
  const got = await lines(ctl);
  expect(got.length).toBeGreaterThan(10);
  expect(got.length).toBeLessThan(200);
  const first = Number(got[0]!.split(' ')[1]);
  expect(got).toEqual(got.map((_, i) => `line ${first + i}`));
  expect(got.at(-1)).toBe('line 200');
});

test('partial last lines and stderr are kept', async () => {
  const { ctl } = setup(sh('printf "a\\nb" ; printf "e\\n" >&2'));
  await started(ctl);
  await ctl.wait(signal());
  const all = await collect(ctl.logs({}));
  expect(all.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(['a', 'b']);
  expect(all.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['e']);
});

test('shim command: the executable re-executed with a hidden argument', async () => {
  expect(shimCommand()).toEqual([process.execPath, resolve(import.meta.dir, '../../src/main.ts'), SHIM_ARG]);
  expect(await runShim([SHIM_ARG])).toBe(2);
  expect(await runShim([SHIM_ARG, '/nonexistent/task-dir'])).toBe(2);
});

/** Start a task from a separate "daemon" process, then SIGKILL that daemon. */
async function crashDaemonAfterStart(taskDir: string, spec: ProcessSpec) {
  const task = makeTask({ Runtime: 'process', ProcessSpec: spec });
  const daemon = Bun.spawn([process.execPath, resolve(import.meta.dir, 'testdata/fake-daemon.ts'), taskDir, JSON.stringify(task)], {
    stdout: 'pipe', stderr: 'inherit',
  });
  cleanups.push(() => daemon.kill('SIGKILL'));
  const reader = daemon.stdout.getReader();
  const first = await Promise.race([reader.read(), daemon.exited.then(() => undefined)]);
  expect(new TextDecoder().decode(first?.value)).toBe('started\n');
  daemon.kill('SIGKILL');
  expect(await daemon.exited).toBe(137);
  return task;
}

test('the task survives a kill -9 of the daemon; a restarted daemon recovers, follows and stops it', async () => {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]()); // after the task's remove: cleanups run in reverse
  const taskDir = join(dir.path, 'task');
  const task = await crashDaemonAfterStart(taskDir, sh('echo before; while :; do sleep 0.05; [ -f go ] && echo after && break; done; sleep 1000', { Dir: dir.path }));
  const child = childOf(taskDir);
  expect(isAlive(child)).toBe(true);

  const ctl = createProcessExecutor({ shimCommand: shim }).controller(task, makeContext(taskDir));
  cleanups.push(() => ctl.remove());
  expect(await ctl.recover()).toBe(true);
  expect(isAlive(child)).toBe(true); // re-attached, not restarted
  expect(childOf(taskDir)).toEqual(child);

  // Output after the crash still reaches the logs.
  writeFileSync(join(dir.path, 'go'), '');
  await waitFor(async () => (await lines(ctl)).includes('after'), 'output written after the crash');

  const waiting = ctl.wait(signal());
  await ctl.stop(2_000);
  expect(await waiting).toEqual({ exitCode: 143, signal: 'SIGTERM', message: 'killed by SIGTERM' });
  expect(groupMembers(child.pid)).toEqual([]);
});

test('a task that ends while the daemon is down reports its exit code after recovery', async () => {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]()); // after the task's remove: cleanups run in reverse
  const taskDir = join(dir.path, 'task');
  const task = await crashDaemonAfterStart(taskDir, sh('while [ ! -f go ]; do sleep 0.05; done; exit 7', { Dir: dir.path }));
  writeFileSync(join(dir.path, 'go'), '');
  await waitFor(() => existsSync(path(taskDir, 'exit')), 'the task to end while no daemon runs');

  const ctl = createProcessExecutor({ shimCommand: shim }).controller(task, makeContext(taskDir));
  cleanups.push(() => ctl.remove());
  expect(await ctl.recover()).toBe(true);
  expect(await ctl.wait(signal())).toEqual({ exitCode: 7, message: 'exit code 7' });
});

test('recover refuses a recorded pid that now belongs to another process', async () => {
  const { ctl, ctx } = setup(sh('exec sleep 1000'));
  await started(ctl);
  const rec = childOf(ctx.taskDir);
  expect(isAlive(rec)).toBe(true);
  expect(isAlive({ ...rec, startTime: '1' })).toBe(false);
});

test('a shim command that does not dispatch to runShim fails the start instead of recursing', async () => {
  // The "shim" here is a program that starts a task itself, as an executable without the
  // `__process-shim` dispatch would: the guard stops it at the second level.
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]()); // after the task's remove: cleanups run in reverse
  const script = join(dir.path, 'not-a-shim.ts');
  writeFileSync(script, `
    import { createProcessExecutor } from ${JSON.stringify(resolve(import.meta.dir, 'index.ts'))};
    const ctl = createProcessExecutor({ shimCommand: [process.execPath, ${JSON.stringify(script)}] })
      .controller({ ID: 'nested', Spec: { ProcessSpec: { Command: ['true'] } } } as any, { taskDir: process.argv[2] + '/nested', log() {} });
    await ctl.prepare(AbortSignal.timeout(5000));
    await ctl.start(AbortSignal.timeout(5000)).catch((e) => { console.error(e.message); process.exit(9); });
  `);
  const exec = createProcessExecutor({ shimCommand: [process.execPath, script], startTimeoutMs: 5_000 });
  const ctl = exec.controller(makeTask({ Runtime: 'process', ProcessSpec: sh('true') }), makeContext(join(dir.path, 'task')));
  cleanups.push(() => ctl.remove());
  await ctl.prepare(signal());
  const err = await ctl.start(signal()).catch((e) => e);
  expect(err.message).toContain('the process shim exited early');
  expect(await Bun.file(join(dir.path, 'task', 'shim.log')).text()).toContain('refusing to start a process shim from inside one');
});

test('without Dir the program runs in a scratch work dir its user owns, removed with the task', async () => {
  const asNobody = process.getuid?.() === 0 ? { User: '65534:65534' } : {};
  const { ctl, ctx } = setup(sh('pwd; echo x > scratch && echo wrote', asNobody));
  await started(ctl);
  expect((await ctl.wait(signal())).exitCode).toBe(0);
  expect(await lines(ctl)).toEqual([join(ctx.taskDir, 'work'), 'wrote']);
  await ctl.remove();
  expect(existsSync(ctx.taskDir)).toBe(false);
});

test('if the shim is killed, the program is still recovered, stopped and reported', async () => {
  const { ctl, ctx, exec, task } = setup(sh('exec sleep 1000'));
  await started(ctl);
  const shimRec = readJson<PidRecord>(path(ctx.taskDir, 'shim'))!;
  process.kill(shimRec.pid, 'SIGKILL');
  await waitFor(() => !isAlive(shimRec), 'the shim to die');
  const child = childOf(ctx.taskDir);
  expect(isAlive(child)).toBe(true);
  const again = exec.controller(task, ctx);
  expect(await again.recover()).toBe(true);
  await again.stop(2_000);
  expect(isAlive(child)).toBe(false);
  expect(await again.wait(signal())).toEqual({ exitCode: 255, message: 'exit status unknown: the process shim died' });
});

test('the task dir files holding env and output are owner-only', async () => {
  const { ctl, ctx } = setup(sh('echo secret', { Env: ['TOKEN=s3cret'] }));
  await started(ctl);
  await ctl.wait(signal());
  expect(statSync(path(ctx.taskDir, 'spec')).mode & 0o077).toBe(0);
  expect(statSync(path(ctx.taskDir, 'log')).mode & 0o077).toBe(0);
});

const mainTs = resolve(import.meta.dir, '../../src/main.ts');
test.if(existsSync(mainTs))('the default shim command (src/main.ts __process-shim) runs a task', async () => {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]()); // after the task's remove: cleanups run in reverse
  const ctl = createProcessExecutor().controller(makeTask({ Runtime: 'process', ProcessSpec: sh('echo via main; exit 5') }), makeContext(join(dir.path, 't')));
  cleanups.push(() => ctl.remove());
  await started(ctl);
  expect(await ctl.wait(signal())).toEqual({ exitCode: 5, message: 'exit code 5' });
  expect(await lines(ctl)).toEqual(['via main']);
});

test('driven by TaskDriver, the running status carries the program pid', async () => {
  const { ctl, ctx } = setup(sh('exec sleep 1000'));
  const d = new TaskDriver(ctl, { observed: 'assigned', desired: 'running', graceMs: 1_000 });
  for await (const s of d.run(signal())) {
    if (s.state !== 'running') continue;
    expect(s.pid).toBe(childOf(ctx.taskDir).pid);
    d.setDesired('shutdown');
  }
  expect(d.observed).toBe('shutdown');
});
