import { afterEach, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { path, readJson, writeJsonAtomic, type ExitRecord, type PidRecord, type ShimSpec } from './files.ts';
import { ShimLauncher } from './launcher.ts';
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

test.skipIf(typeof native === 'string')('closing the launcher leaves its shims running and their tasks marked lost (polled from then on); a closed launcher starts nothing', async () => {
  const launcher = new ShimLauncher((native as string[])[0]!, { ...process.env }, () => {});
  cleanups.push(() => launcher.close());
  const dir = taskDir(['/bin/sleep', '1000']);
  const ev = launcher.spawn(dir);
  await bounded(ev.started, 'the program to start');
  const shim = readJson<PidRecord>(path(dir, 'shim'))!;
  cleanups.push(() => { try { process.kill(readJson<PidRecord>(path(dir, 'child'))!.pid, 'SIGKILL'); } catch { /* gone */ } });
  await launcher.close(); // stdin ends: the launcher exits
  await bounded(ev.exited, 'the task to be marked lost');
  expect(ev.lost).toBe(true);
  expect(existsSync(`/proc/${shim.pid}`)).toBe(true);
  expect(() => launcher.spawn(taskDir(['/bin/true']))).toThrow(/closed/);
});
