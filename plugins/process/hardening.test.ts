/**
 * The process executor's hardening, on the real kernel: cgroup limits, killing the whole tree
 * (daemons that left the process group included), users with supplementary groups, namespaces.
 * Needs root and a cgroup mount; each test says why it skips otherwise.
 */
import { afterEach, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Controller, TaskContext } from '../../src/executor/contract.ts';
import type { ProcessSpec, TaskSpec } from '../../src/types/index.ts';
import { collect, makeContext, makeTask, tempDir, waitFor } from '../../test/compliance/fixtures.ts';
import { cgroupMembers, createTaskCgroup, detectCgroups, killCgroup, removeCgroup, type TaskCgroup } from './cgroup.ts';
import { path, procStat, readJson, type ShimSpec } from './files.ts';
import { createProcessExecutor } from './index.ts';
import { findTools } from './launch.ts';
import { jsShim, testShim } from './testdata/shims.ts';

const PARENT = 'shoal-test';
const shim = await testShim();
/** The native shim is started as the daemon starts it: through its launcher, joining its cgroups itself. */
const shimLauncher = shim !== jsShim;
const signal = () => AbortSignal.timeout(15_000);
const root = process.getuid?.() === 0;
const support = detectCgroups(PARENT);
const tools = findTools();
const withCgroups = root && support.mode !== 'none';
const withLimits = withCgroups && !!support.memoryRoot && !!support.cpuRoot;
if (!root) console.warn('hardening tests skipped: they need root (CI runs as root)');
else if (!withLimits) console.warn(`cgroup limit tests skipped: ${support.note ?? 'no memory/cpu cgroup'}`);

const cleanups: (() => unknown)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

function setup(p: ProcessSpec, more: Partial<TaskSpec> = {}, ctx: Partial<TaskContext> = {}) {
  const dir = tempDir();
  const exec = createProcessExecutor({ shimCommand: shim, shimLauncher, cgroupParent: PARENT });
  const ctl = exec.controller(makeTask({ Runtime: 'process', ProcessSpec: p, ...more }), { ...makeContext(join(dir.path, 'task')), ...ctx });
  cleanups.push(() => dir[Symbol.dispose](), () => ctl.remove());
  return { exec, ctl, taskDir: join(dir.path, 'task') };
}
const sh = (script: string, more: Partial<ProcessSpec> = {}): ProcessSpec => ({ Command: ['/bin/sh', '-c', script], ...more });
async function started(ctl: Controller) { await ctl.prepare(signal()); await ctl.start(signal()); }
const lines = async (ctl: Controller) => (await collect(ctl.logs({}))).map((l) => l.line);
const cgroupOf = (taskDir: string) => readJson<ShimSpec>(path(taskDir, 'spec'))!.cgroup!;
const alive = (pid: number) => { const s = procStat(pid); return !!s && s.state !== 'Z'; };

test('the fingerprint says what cgroups and isolation this host offers', async () => {
  const fp = await createProcessExecutor({ shimCommand: shim, cgroupParent: PARENT }).fingerprint();
  expect(['v1', 'v2', 'none']).toContain(fp.attributes['process.cgroup']!);
  expect(fp.attributes['process.cgroup']).toBe(support.mode);
  expect(fp.attributes['process.isolation']).toBe(String(root && !!tools.unshare));
});

test.if(withLimits)('a task allocating beyond Limits.MemoryBytes is OOM-killed and reported as out of memory', async () => {
  const hog = [process.execPath, '-e', 'const a = []; for (;;) a.push(Buffer.alloc(8 << 20, 1));'];
  const { ctl, taskDir } = setup({ Command: hog }, { Resources: { Limits: { MemoryBytes: 96 << 20 } } });
  await started(ctl);
  const cg = cgroupOf(taskDir);
  const limitFile = cg.mode === 'v2' ? 'memory.max' : 'memory.limit_in_bytes';
  expect(readFileSync(join(cg.memory!, limitFile), 'utf8').trim()).toBe(String(96 << 20));
  const exit = await ctl.wait(signal());
  expect(exit.exitCode).toBe(137);
  expect(exit.message).toStartWith('out of memory');
});

test.if(withLimits)('Limits.NanoCPUs becomes a CFS quota; the cgroup goes with remove()', async () => {
  const { ctl, taskDir } = setup(sh('echo up; exec sleep 1000'), { Resources: { Limits: { NanoCPUs: 5e8 } } });
  await started(ctl);
  const cg = cgroupOf(taskDir);
  const quota = cg.mode === 'v2'
    ? readFileSync(join(cg.cpu!, 'cpu.max'), 'utf8').trim()
    : `${readFileSync(join(cg.cpu!, 'cpu.cfs_quota_us'), 'utf8').trim()} ${readFileSync(join(cg.cpu!, 'cpu.cfs_period_us'), 'utf8').trim()}`;
  expect(quota).toBe('50000 100000');
  const pid = (await waitFor(() => (cgroupMembers(cg).length ? cgroupMembers(cg) : undefined), 'the program to join its cgroup'))![0];
  // The native shim joins them between fork and exec; the JavaScript shim needs the sh step.
  const spec = readJson<ShimSpec>(path(taskDir, 'spec'))!;
  if (shimLauncher) expect([spec.argv, spec.cgroupProcs]).toEqual([undefined, cg.dirs.map((d) => join(d, 'cgroup.procs'))]);
  else expect(spec.argv?.[0]).toEndWith('sh');
  await ctl.remove();
  expect(alive(pid!)).toBe(false);
  for (const d of cg.dirs) expect(existsSync(d)).toBe(false);
});

test.if(withCgroups)('stop kills a daemon that left the process group (setsid, double fork)', async () => {
  const { ctl, taskDir } = setup(sh('(setsid sh -c "sleep 1000 & echo \\$! > daemon.pid" &); echo up; exec sleep 1000'));
  await started(ctl);
  const pidFile = join(taskDir, 'work', 'daemon.pid');
  const daemon = Number(await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 'the daemon pid'));
  expect(procStat(daemon)!.pgrp).not.toBe(readJson<{ pid: number }>(path(taskDir, 'child'))!.pid);
  expect(alive(daemon)).toBe(true);
  await ctl.stop(2_000);
  expect(alive(daemon)).toBe(false);
  expect(cgroupMembers(cgroupOf(taskDir))).toEqual([]);
});

test.if(withCgroups)('when the program exits, a daemon it left behind in another session goes too', async () => {
  const { ctl, taskDir } = setup(sh('setsid sleep 1000 & echo $! > daemon.pid; exit 0'));
  await started(ctl);
  expect((await ctl.wait(signal())).exitCode).toBe(0);
  const daemon = Number(readFileSync(join(taskDir, 'work', 'daemon.pid'), 'utf8'));
  expect(alive(daemon)).toBe(false);
});

test.if(withCgroups && !!tools.sh)('without cgroup.kill, killing iterates cgroup.procs until empty', async () => {
  // A cgroup without its unified part, as on a pure v1 host: only per-pid SIGKILLs can empty it.
  const full = await createTaskCgroup(support, PARENT, `iterate${Date.now()}`, {});
  const cg: TaskCgroup = { ...full, dirs: full.dirs.filter((d) => d !== full.unified) };
  delete cg.unified;
  cleanups.push(async () => { await killCgroup(full); await removeCgroup(full); });
  const procs = join(cg.dirs[0]!, 'cgroup.procs');
  // A forking tree whose members leave their session: a group kill would miss them.
  const p = Bun.spawn(['/bin/sh', '-c', `echo 0 > ${procs}; setsid sh -c 'sleep 1000 & sleep 1000 & wait' & setsid sleep 1000 & wait`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(() => cgroupMembers(cg).length >= 5, 'the tree to be in the cgroup');
  expect(await killCgroup(cg)).toBe(true);
  expect(cgroupMembers(cg)).toEqual([]);
  await p.exited;
});

test.if(root && !!tools.setpriv)('User with supplementary Groups: the program runs with exactly those ids', async () => {
  const { ctl } = setup({ Command: ['/bin/sh', '-c', 'id -u; id -g; id -G'], User: 'nobody:nogroup', Groups: ['daemon', '4242'] });
  await started(ctl);
  expect((await ctl.wait(signal())).exitCode).toBe(0);
  expect(await lines(ctl)).toEqual(['65534', '65534', '65534 1 4242']);
});

test.if(root)('unknown Groups are named at prepare', async () => {
  const { ctl } = setup({ Command: ['true'], User: 'nobody', Groups: ['no-such-group-x'] });
  await expect(ctl.prepare(signal())).rejects.toThrow('ProcessSpec.Groups[0]: no group "no-such-group-x"');
});

test.if(root && !!tools.unshare && !!tools.ip)('Isolation: own PID, mount and loopback-only network namespaces', async () => {
  const script = 'echo pid=$$; readlink /proc/self/ns/mnt; readlink /proc/self/ns/net; ip -o link | cut -d: -f2 | tr -d " "; ip -o link show lo | grep -c LOWER_UP; echo up; exec sleep 1000';
  const { ctl } = setup(sh(script, { Isolation: { Pid: true, Mount: true, Network: true } }));
  await started(ctl);
  await waitFor(async () => (await lines(ctl)).includes('up'), 'the namespace report');
  const [pid, mnt, net, ...rest] = await lines(ctl);
  expect(pid).toBe('pid=1');
  expect(mnt).not.toBe(readlinkSync('/proc/self/ns/mnt'));
  expect(net).not.toBe(readlinkSync('/proc/self/ns/net'));
  expect(rest).toEqual(['lo', '1', 'up']); // only loopback, and it is up
  await ctl.stop(1_000);
  const exit = await ctl.wait(signal());
  expect(exit.exitCode === 0 && !exit.signal).toBe(false);
});

test.if(root && !!tools.unshare && !!tools.mount)('Isolation.Mount: the task sees its secrets and configs at /run/secrets and /run/configs, read-only; the host does not', async () => {
  const files = tempDir();
  cleanups.push(() => files[Symbol.dispose]());
  const secretsDir = join(files.path, 'secrets');
  const configsDir = join(files.path, 'configs');
  mkdirSync(secretsDir);
  mkdirSync(configsDir);
  writeFileSync(join(secretsDir, 'pw'), 'hush-hardening', { mode: 0o400 });
  writeFileSync(join(configsDir, 'app.conf'), 'listen 80', { mode: 0o444 });
  const script = 'cat /run/secrets/pw; echo; cat /run/configs/app.conf; echo; echo env=$SHOAL_SECRETS_DIR,$SHOAL_CONFIGS_DIR; echo x > /run/secrets/pw || echo read-only; echo up; exec sleep 1000';
  const { ctl } = setup(sh(script, { Isolation: { Mount: true } }), {}, {
    files: { dir: files.path, secretsDir, configsDir, files: [] },
  });
  await started(ctl);
  await waitFor(async () => (await lines(ctl)).includes('up'), 'the task\'s report');
  expect((await lines(ctl)).filter((l) => !l.includes('Read-only'))).toEqual(['hush-hardening', 'listen 80', 'env=/run/secrets,/run/configs', 'read-only', 'up']);
  expect(existsSync('/run/secrets/pw')).toBe(false);
  expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(' /run/secrets ');
  await ctl.stop(1_000);
});

test.if(!root)('as non-root, limits, users and isolation are refused naming the field', async () => {
  for (const [p, more, field] of [
    [sh('true', { Isolation: { Pid: true } }), {}, 'ProcessSpec.Isolation'],
    [sh('true', { User: 'nobody' }), {}, 'ProcessSpec.User'],
    [sh('true'), { Resources: { Limits: { MemoryBytes: 64 << 20 } } }, 'Resources.Limits.MemoryBytes'],
  ] as const) {
    const { ctl } = setup(p, more);
    await expect(ctl.prepare(signal())).rejects.toThrow(field);
  }
});
