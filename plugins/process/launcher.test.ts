import { afterEach, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { path, readJson, writeJsonAtomic, type ExitRecord, type PidRecord, type ShimSpec } from './files.ts';
import { ShimLauncher } from './launcher.ts';
import { waitFor } from '../../test/harness/wait.ts';
import { nativeTestShim } from './testdata/shims.ts';

const native = await nativeTestShim();
if (typeof native === 'string') console.warn(`shim launcher tests: not run: ${native}`);

const cleanups: (() => unknown)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

function taskDir(command: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'shoal-launcher-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'task');
  mkdirSync(dir);
  const spec: ShimSpec = { command, env: { PATH: '/usr/bin:/bin' }, logMaxBytes: 1 << 20, dir };
  writeJsonAtomic(path(dir, 'spec'), spec);
  return dir;
}

function bounded<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))]);
}

test.skipIf(typeof native === 'string')('shims say when their program started and when they ended; a start error is a start too', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {});
  cleanups.push(() => launcher.close());
  const good = taskDir(['/bin/sleep', '1000']);
  const bad = taskDir(['/nonexistent/program']);
  const g = launcher.spawn(good);
  const b = launcher.spawn(bad);
  await bounded(g.started, 'the program to start');
  // Started means child.json is there: the controller reads the files only once woken.
  expect(readJson<PidRecord>(path(good, 'child'))?.pid).toBeGreaterThan(0);
  await bounded(b.exited, 'the failing shim to exit');
  expect(readJson<ExitRecord>(path(bad, 'exit'))?.startError).toContain('/nonexistent/program');
  expect(g.hasExited).toBe(false);
  expect(launcher.running).toBe(1);
  process.kill(readJson<PidRecord>(path(good, 'child'))!.pid, 'SIGKILL');
  await bounded(g.exited, 'the shim to exit after its program was killed');
  expect(readJson<ExitRecord>(path(good, 'exit'))?.signal).toBe('SIGKILL');
  expect([g.lost, b.lost, launcher.running]).toEqual([false, false, 0]);
});

const kill = (pid: number) => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } };
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
test.skipIf(typeof native === 'string')('one supervisor runs many tasks: each has its own log and its own end; one ending leaves the others running', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {});
  cleanups.push(() => launcher.close());
  const dirs = [0, 1, 2].map((i) => taskDir(['/bin/sh', '-c', `echo task-${i}; echo err-${i} >&2; exec sleep 1000`]));
  const evs = dirs.map((d) => launcher.spawn(d));
  await bounded(Promise.all(evs.map((e) => e.started)), 'the programs to start');
  const shims = dirs.map((d) => readJson<PidRecord>(path(d, 'shim'))!);
  const children = dirs.map((d) => readJson<PidRecord>(path(d, 'child'))!.pid);
  cleanups.push(() => children.forEach((c) => kill(c)));
  expect(new Set(shims.map((s) => s.pid)).size).toBe(1);
  expect(shims[0]!.shared).toBe(true);
  expect(new Set(children).size).toBe(3);
  // Each task's output lands in its own log.
  for (const [i, d] of dirs.entries()) {
    await waitFor(`task ${i}'s output`, () => existsSync(path(d, 'log')) && readFileSync(path(d, 'log'), 'utf8').includes(`err-${i}`), 10_000, 10);
    const lines = readFileSync(path(d, 'log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { s: string; l: string });
    expect(lines.map((l) => `${l.s}:${l.l}`).sort()).toEqual([`e:err-${i}`, `o:task-${i}`]);
  }
  process.kill(children[1]!, 'SIGTERM');
  await bounded(evs[1]!.exited, 'task 1 to end');
  expect(readJson<ExitRecord>(path(dirs[1]!, 'exit'))?.signal).toBe('SIGTERM');
  expect([evs[0]!.hasExited, evs[2]!.hasExited, existsSync(path(dirs[0]!, 'exit'))]).toEqual([false, false, false]);
  expect([alive(children[0]!), alive(children[2]!), alive(shims[0]!.pid)]).toEqual([true, true, true]);
  expect(launcher.running).toBe(2);
});

test.skipIf(typeof native === 'string')('a supervisor is retired after its share of tasks; it ends with its last task, and a dead one loses only its own', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {}, 2);
  cleanups.push(() => launcher.close());
  const dirs = [0, 1, 2].map(() => taskDir(['/bin/sleep', '1000']));
  const evs = dirs.map((d) => launcher.spawn(d));
  await bounded(Promise.all(evs.map((e) => e.started)), 'the programs to start');
  const sup = dirs.map((d) => readJson<PidRecord>(path(d, 'shim'))!.pid);
  const children = dirs.map((d) => readJson<PidRecord>(path(d, 'child'))!.pid);
  cleanups.push(() => children.forEach((c) => kill(c)));
  expect(sup[0]).toBe(sup[1]!);
  expect(sup[2]).not.toBe(sup[0]!);
  // The retired one (stdin closed) keeps its tasks until they end, then exits.
  kill(children[0]!);
  await bounded(evs[0]!.exited, 'task 0 to end');
  expect(alive(sup[0]!)).toBe(true);
  kill(children[1]!);
  await bounded(evs[1]!.exited, 'task 1 to end');
  await waitFor('the retired supervisor to exit', () => !alive(sup[0]!), 10_000, 10);
  // The current one dies: its task is lost (polled from now on); the program runs on.
  kill(sup[2]!);
  await bounded(evs[2]!.exited, 'task 2 to be marked lost');
  expect([evs[2]!.lost, evs[0]!.lost, alive(children[2]!)]).toEqual([true, false, true]);
  // The next task gets a new supervisor.
  const next = taskDir(['/bin/sleep', '1000']);
  const ev = launcher.spawn(next);
  await bounded(ev.started, 'the next program to start');
  cleanups.push(() => kill(readJson<PidRecord>(path(next, 'child'))!.pid));
  expect([sup[0], sup[2]]).not.toContain(readJson<PidRecord>(path(next, 'shim'))!.pid);
});

test.skipIf(typeof native === 'string')('closing the launcher leaves the supervisor and its tasks running (marked lost, polled from then on) until they end; a closed launcher starts nothing', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {});
  cleanups.push(() => launcher.close());
  const dir = taskDir(['/bin/sleep', '1000']);
  const ev = launcher.spawn(dir);
  await bounded(ev.started, 'the program to start');
  const shim = readJson<PidRecord>(path(dir, 'shim'))!;
  const child = readJson<PidRecord>(path(dir, 'child'))!.pid;
  cleanups.push(() => kill(child));
  await launcher.close(); // stdin ends: the supervisor takes no more tasks
  await bounded(ev.exited, 'the task to be marked lost');
  expect(ev.lost).toBe(true);
  expect([alive(shim.pid), alive(child)]).toEqual([true, true]);
  expect(() => launcher.spawn(taskDir(['/bin/true']))).toThrow(/closed/);
  // Its last task ends: the exit is still recorded, then the supervisor goes.
  kill(child);
  await waitFor('the exit record', () => !!readJson<ExitRecord>(path(dir, 'exit')), 10_000, 10);
  expect(readJson<ExitRecord>(path(dir, 'exit'))?.signal).toBe('SIGKILL');
  await waitFor('the supervisor to exit', () => !alive(shim.pid), 10_000, 10);
});

test.skipIf(typeof native === 'string')('an unreadable spec ends that task at once ("X" without exit.json, a note in shim.log); the supervisor goes on', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {});
  cleanups.push(() => launcher.close());
  const bad = taskDir(['/bin/true']);
  writeFileSync(path(bad, 'spec'), '{not json');
  const ev = launcher.spawn(bad);
  await bounded(ev.exited, 'the bad task to end');
  expect([ev.lost, existsSync(path(bad, 'exit')), existsSync(path(bad, 'child'))]).toEqual([false, false, false]);
  expect(readFileSync(path(bad, 'shimLog'), 'utf8')).toContain('no readable');
  const good = taskDir(['/bin/sh', '-c', 'exit 3']);
  const g = launcher.spawn(good);
  await bounded(g.exited, 'the good task to end');
  expect(readJson<ExitRecord>(path(good, 'exit'))?.exitCode).toBe(3);
});

test.skipIf(typeof native === 'string')('every task gets its shim.json, also once the task whose file the supervisor linked from is gone', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {});
  cleanups.push(() => launcher.close());
  const started: string[] = [];
  const start = async (d: string) => { await bounded(launcher.spawn(d).started, `${d} to start`); started.push(d); cleanups.push(() => { const c = readJson<PidRecord>(path(d, 'child')); if (c) kill(c.pid); }); };
  const a = taskDir(['/bin/sleep', '1000']);
  await start(a);
  const b = taskDir(['/bin/sleep', '1000']);
  await start(b);
  const c = readJson<PidRecord>(path(a, 'child'))!.pid;
  kill(c);
  await waitFor('task a to end', () => !!readJson<ExitRecord>(path(a, 'exit')), 10_000, 10);
  rmSync(a, { recursive: true, force: true });
  const d = taskDir(['/bin/sleep', '1000']);
  await start(d);
  const recs = [b, d].map((x) => readJson<PidRecord>(path(x, 'shim')));
  expect(recs.map((r) => r?.shared)).toEqual([true, true]);
  expect(recs[0]?.pid).toBe(recs[1]!.pid);
});
