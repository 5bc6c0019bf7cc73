/**
 * Layout detection and the files each cgroup version is written through, on a fake cgroup tree
 * (a temp dir and a mounts file naming it). This machine kind mounts only v1 controllers, so the
 * pure-v2 path is checked here for what it writes; hardening.test.ts checks the kernel's effect
 * on whatever layout the host has.
 */
import { afterEach, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupMembers, cgroupMemoryBytes, createTaskCgroup, detectCgroups, oomKills } from './cgroup.ts';

const asRoot = process.getuid?.() === 0;
let dir = '';
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = ''; });

/** A fake host: the mount lines given, each mount a directory under a temp dir. */
function fakeHost(mounts: { name: string; type: string; options: string; files?: Record<string, string> }[]): string {
  dir = mkdtempSync(join(tmpdir(), 'shoal-cgroup-'));
  const lines = mounts.map((m) => {
    const at = join(dir, m.name);
    mkdirSync(at, { recursive: true });
    for (const [f, text] of Object.entries(m.files ?? {})) writeFileSync(join(at, f), text);
    return `cgroup ${at} ${m.type} ${m.options} 0 0`;
  });
  writeFileSync(join(dir, 'mounts'), `${lines.join('\n')}\n`);
  return join(dir, 'mounts');
}

test.if(asRoot)('pure v2 with memory and cpu: controllers delegated, limits through memory.max and cpu.max', async () => {
  const mounts = fakeHost([{ name: 'unified', type: 'cgroup2', options: 'rw,nosuid', files: { 'cgroup.controllers': 'cpuset cpu io memory pids\n' } }]);
  const support = detectCgroups('shoal', mounts);
  const root = join(dir, 'unified');
  expect(support).toEqual({ mode: 'v2', memoryRoot: root, cpuRoot: root, unifiedRoot: root });
  expect(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu');
  expect(readFileSync(join(root, 'shoal', 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu');

  const cg = await createTaskCgroup(support, 'shoal', 'task/1', { memoryBytes: 64 << 20, nanoCPUs: 2.5e8 });
  const taskDir = join(root, 'shoal', 'task_1');
  expect(cg).toEqual({ mode: 'v2', dirs: [taskDir], memory: taskDir, cpu: taskDir, unified: taskDir });
  expect(readFileSync(join(taskDir, 'memory.max'), 'utf8')).toBe(String(64 << 20));
  expect(readFileSync(join(taskDir, 'cpu.max'), 'utf8')).toBe('25000 100000');

  writeFileSync(join(taskDir, 'cgroup.procs'), '101\n102\n');
  writeFileSync(join(taskDir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
  writeFileSync(join(taskDir, 'memory.current'), '4096\n');
  expect(cgroupMembers(cg).sort()).toEqual([101, 102]);
  expect(oomKills(cg)).toBe(1);
  expect(cgroupMemoryBytes(cg)).toBe(4096);
});

test.if(asRoot)('hybrid: v1 controllers for limits, the controller-less cgroup2 beside them for tracking and kill', async () => {
  const mounts = fakeHost([
    { name: 'memory', type: 'cgroup', options: 'rw,memory' },
    { name: 'cpu', type: 'cgroup', options: 'rw,cpu,cpuacct' },
    { name: 'unified', type: 'cgroup2', options: 'rw', files: { 'cgroup.controllers': '\n' } },
  ]);
  const support = detectCgroups('shoal', mounts);
  expect(support).toEqual({ mode: 'v1', memoryRoot: join(dir, 'memory'), cpuRoot: join(dir, 'cpu'), unifiedRoot: join(dir, 'unified') });
  const cg = await createTaskCgroup(support, 'shoal', 't1', { memoryBytes: 1 << 20, nanoCPUs: 1e9 });
  expect(cg.dirs).toHaveLength(3);
  expect(readFileSync(join(dir, 'memory', 'shoal', 't1', 'memory.limit_in_bytes'), 'utf8')).toBe(String(1 << 20));
  expect(readFileSync(join(dir, 'cpu', 'shoal', 't1', 'cpu.cfs_quota_us'), 'utf8')).toBe('100000');
  expect(readFileSync(join(dir, 'cpu', 'shoal', 't1', 'cpu.cfs_period_us'), 'utf8')).toBe('100000');
});

test.if(asRoot)('a cgroup2 without controllers alone tracks the tree but refuses limits, naming the field', async () => {
  const mounts = fakeHost([{ name: 'unified', type: 'cgroup2', options: 'rw', files: { 'cgroup.controllers': '\n' } }]);
  const support = detectCgroups('shoal', mounts);
  expect(support.mode).toBe('v2');
  expect(support.memoryRoot).toBeUndefined();
  await expect(createTaskCgroup(support, 'shoal', 't', { memoryBytes: 1 << 20 })).rejects.toThrow(/^Resources\.Limits\.MemoryBytes: .*no memory\/cpu controllers/);
  await expect(createTaskCgroup(support, 'shoal', 't', { nanoCPUs: 1e9 })).rejects.toThrow(/^Resources\.Limits\.NanoCPUs: /);
  expect((await createTaskCgroup(support, 'shoal', 't', {})).dirs).toEqual([join(dir, 'unified', 'shoal', 't')]);
});

test('no mounts at all: mode none, with the reason', () => {
  const support = detectCgroups('shoal', fakeHost([]));
  expect(support.mode).toBe('none');
  expect(support.note).toBeTruthy();
});
