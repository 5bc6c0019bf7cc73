/**
 * Control groups for process tasks: one cgroup per task (`<parent>/<task id>`) in every hierarchy
 * that matters, so that memory and CPU limits apply and the whole process tree can be killed —
 * including processes that left the task's process group (`setsid`, double-forking daemons).
 *
 * Three layouts exist in the wild, detected from /proc/self/mounts:
 *   v2      one cgroup2 mount with the memory and cpu controllers: memory.max, cpu.max, cgroup.kill
 *   v1      per-controller mounts (memory, cpu): memory.limit_in_bytes, cpu.cfs_quota_us; often
 *           with a controller-less cgroup2 mount beside it ("hybrid"), used only for cgroup.kill
 *   none    not root, or no usable mount: limits are refused, the process group is all we kill
 *
 * Everything a task's cgroup needs later (the shim, a restarted daemon) is in `TaskCgroup`, a plain
 * record kept in the task's spec.json.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type CgroupMode = 'v2' | 'v1' | 'none';

export interface CgroupSupport {
  mode: CgroupMode;
  /** Hierarchy roots: where the memory and cpu controllers live (v2: the same cgroup2 mount). */
  memoryRoot?: string;
  cpuRoot?: string;
  /** A cgroup2 mount (pure or hybrid): tracks every process and offers cgroup.kill. */
  unifiedRoot?: string;
  /** Why there is no cgroup support, or what part is missing. */
  note?: string;
}

export interface TaskCgroup {
  mode: CgroupMode;
  /** Every cgroup directory of the task; the program joins all of them before it execs. */
  dirs: string[];
  memory?: string;
  cpu?: string;
  unified?: string;
}

export interface CgroupLimits { memoryBytes?: number; nanoCPUs?: number }

const CPU_PERIOD_US = 100_000;

interface MountEntry { dir: string; type: string; options: string[] }

function readMounts(file: string): MountEntry[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return []; }
  return text.split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    return { dir: f[1]!.replace(/\\040/g, ' '), type: f[2]!, options: (f[3] ?? '').split(',') };
  });
}

function readText(file: string): string | undefined {
  try { return readFileSync(file, 'utf8'); } catch { return undefined; }
}

/**
 * What this host offers, checked by creating `<root>/<parent>` in each hierarchy (so "works" means
 * works, not "is mounted"). Needs root; anyone else gets mode none.
 */
export function detectCgroups(parent = 'shoal', mountsFile = '/proc/self/mounts'): CgroupSupport {
  if (process.getuid?.() !== 0) return { mode: 'none', note: 'cgroups need the daemon to run as root' };
  const mounts = readMounts(mountsFile);
  const v2 = mounts.find((m) => m.type === 'cgroup2');
  const v1Memory = mounts.find((m) => m.type === 'cgroup' && m.options.includes('memory'));
  const v1Cpu = mounts.find((m) => m.type === 'cgroup' && m.options.includes('cpu'));
  const usable = (root: string) => {
    try { mkdirSync(join(root, parent), { recursive: true }); return true; } catch { return false; }
  };
  if (v2) {
    const controllers = (readText(join(v2.dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    if (controllers.includes('memory') && controllers.includes('cpu') && usable(v2.dir)) {
      // Children of <parent> get the controllers only when both levels delegate them.
      try {
        writeFileSync(join(v2.dir, 'cgroup.subtree_control'), '+memory +cpu');
        writeFileSync(join(v2.dir, parent, 'cgroup.subtree_control'), '+memory +cpu');
      } catch (err) {
        return { mode: 'none', note: `cgroup v2 at ${v2.dir}: cannot enable memory and cpu: ${(err as Error).message}` };
      }
      return { mode: 'v2', memoryRoot: v2.dir, cpuRoot: v2.dir, unifiedRoot: v2.dir };
    }
  }
  const unifiedRoot = v2 && usable(v2.dir) ? v2.dir : undefined;
  if (v1Memory && v1Cpu && usable(v1Memory.dir) && usable(v1Cpu.dir)) {
    return { mode: 'v1', memoryRoot: v1Memory.dir, cpuRoot: v1Cpu.dir, ...(unifiedRoot ? { unifiedRoot } : {}) };
  }
  if (unifiedRoot) {
    return { mode: 'v2', unifiedRoot, note: `cgroup2 at ${unifiedRoot} has no memory/cpu controllers: tree tracking only` };
  }
  return { mode: 'none', note: 'no usable cgroup mount (memory and cpu controllers, or cgroup2)' };
}

/** The task's directory name: task ids are safe already; anything else is replaced. */
export function cgroupName(taskId: string): string {
  return taskId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128) || 'task';
}

/**
 * Create the task's cgroups and write its limits. Throws an Error naming the limit field when a
 * limit is asked for but cannot be enforced here.
 *
 * Asynchronous, its directories made at once: creating a cgroup costs the kernel a while (a
 * memory cgroup most), and on the event loop a thousand tasks' worth held every other task up
 * (issue #18). `<root>/<parent>` exists already (detectCgroups made it), so no parent is made.
 */
export async function createTaskCgroup(support: CgroupSupport, parent: string, taskId: string, limits: CgroupLimits): Promise<TaskCgroup> {
  if (limits.memoryBytes && !support.memoryRoot) {
    throw new Error(`Resources.Limits.MemoryBytes: this node cannot enforce memory limits on processes (${support.note ?? 'no memory cgroup'})`);
  }
  if (limits.nanoCPUs && !support.cpuRoot) {
    throw new Error(`Resources.Limits.NanoCPUs: this node cannot enforce CPU limits on processes (${support.note ?? 'no cpu cgroup'})`);
  }
  const name = cgroupName(taskId);
  const at = (root?: string) => (root ? join(root, parent, name) : undefined);
  const cg: TaskCgroup = { mode: support.mode, dirs: [] };
  const memory = at(support.memoryRoot), cpu = at(support.cpuRoot), unified = at(support.unifiedRoot);
  if (memory) cg.memory = memory;
  if (cpu) cg.cpu = cpu;
  if (unified) cg.unified = unified;
  cg.dirs = [...new Set([memory, cpu, unified].filter((d): d is string => !!d))];
  await Promise.all(cg.dirs.map((d) => mkdir(d).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return;
    // The parent is gone (removed by hand since detection): make it again.
    if (err.code === 'ENOENT') { await mkdir(d, { recursive: true }); return; }
    throw err;
  })));
  const writes: Promise<void>[] = [];
  if (limits.memoryBytes && cg.memory) {
    if (cg.mode === 'v2') writes.push(writeFile(join(cg.memory, 'memory.max'), String(limits.memoryBytes)));
    else {
      writes.push(writeFile(join(cg.memory, 'memory.limit_in_bytes'), String(limits.memoryBytes)).then(async () => {
        // Without swap accounting the limit could be dodged by swapping; where it exists, close it.
        const memsw = join(cg.memory!, 'memory.memsw.limit_in_bytes');
        if (existsSync(memsw)) { try { await writeFile(memsw, String(limits.memoryBytes)); } catch { /* best effort */ } }
      }));
    }
  }
  if (limits.nanoCPUs && cg.cpu) {
    const quotaUs = Math.max(1_000, Math.round((limits.nanoCPUs / 1e9) * CPU_PERIOD_US));
    if (cg.mode === 'v2') writes.push(writeFile(join(cg.cpu, 'cpu.max'), `${quotaUs} ${CPU_PERIOD_US}`));
    else {
      // The period first: a quota is checked against the period in place.
      writes.push(writeFile(join(cg.cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US)).then(() => writeFile(join(cg.cpu!, 'cpu.cfs_quota_us'), String(quotaUs))));
    }
  }
  await Promise.all(writes);
  return cg;
}

/** Pids in the task's cgroups (every hierarchy: a process could be in one only while joining). */
export function cgroupMembers(cg: TaskCgroup): number[] {
  const pids = new Set<number>();
  for (const d of cg.dirs) {
    for (const l of (readText(join(d, 'cgroup.procs')) ?? '').split('\n')) if (l) pids.add(Number(l));
  }
  return [...pids];
}

/**
 * SIGKILL everything in the task's cgroups and wait until they are empty (bounded): `cgroup.kill`
 * where the kernel has it (5.14+), else kill each member, again, until none is left (a process
 * forking meanwhile is caught by the next round). True when empty.
 */
export async function killCgroup(cg: TaskCgroup, timeoutMs = 5_000): Promise<boolean> {
  if (cg.dirs.every((d) => !existsSync(d))) return true;
  const killFile = cg.unified && join(cg.unified, 'cgroup.kill');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = cgroupMembers(cg);
    if (members.length === 0) return true;
    if (killFile && existsSync(killFile)) { try { writeFileSync(killFile, '1'); } catch { /* fall back below */ } }
    for (const pid of members) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Remove the task's cgroup directories (after `killCgroup`). Missing ones are fine. */
export async function removeCgroup(cg: TaskCgroup, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const d of cg.dirs) {
    for (;;) {
      try { rmdirSync(d); break; } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY: the last member is still exiting.
        if (Date.now() >= deadline) throw new Error(`cannot remove cgroup ${d}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }
}

/** How many processes the kernel's OOM killer has killed in the task's memory cgroup. */
export function oomKills(cg: TaskCgroup): number {
  if (!cg.memory) return 0;
  const text = readText(join(cg.memory, cg.mode === 'v2' ? 'memory.events' : 'memory.oom_control')) ?? '';
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Memory charged to the task's cgroup now, when there is a memory cgroup. */
export function cgroupMemoryBytes(cg: TaskCgroup): number | undefined {
  if (!cg.memory) return undefined;
  const v = readText(join(cg.memory, cg.mode === 'v2' ? 'memory.current' : 'memory.usage_in_bytes'));
  return v === undefined ? undefined : Number(v.trim());
}
