/**
 * Executors, as a user runs them (dist/shoal, one host): create → running latency per runtime
 * (p50 and p95 of 20 services of one task each, through the whole pipeline: API, orchestrator,
 * scheduler, dispatcher, agent, executor), with `docker run` of the same image in the same run as
 * the anchor for the container runtime (target: within 1.2× of it); and idle overhead per running
 * task: the daemon's RSS growth, and the per-task supervisor (shim) processes outside it.
 * A runtime this host lacks (no engine, no QEMU or guest kernel) is skipped, saying why.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, killTaskProcesses, requireBinary, waitFor } from '../test/harness/index.ts';
import { guestAssets, guestSpec } from '../test/fixtures/vm/guest.ts';
import { TEST_IMAGE } from '../test/fixtures/images/engine.ts';
import type { TaskSpec } from '../src/types/index.ts';
import { type Figure, report, rssOf, stats } from './lib.ts';

const RUNS = 20;
/** Tasks kept running at once to measure idle overhead (fewer VMs: each is a guest under emulation). */
const IDLE_TASKS: Record<string, number> = { mock: 20, process: 20, script: 20, container: 20, vm: 4 };
const WAIT_MS = 120_000;

interface Runtime { name: string; spec?: TaskSpec; skip?: string }

function runtimes(health: Record<string, { Healthy: boolean; Message?: string }>): Runtime[] {
  const unhealthy = (n: string) => (health[n]?.Healthy ? undefined : `runtime "${n}" unavailable on this host: ${health[n]?.Message ?? 'not registered'}`);
  const assets = guestAssets();
  return [
    { name: 'mock', spec: { Runtime: 'mock', MockSpec: {} } },
    { name: 'process', spec: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sleep', '3600'] } } },
    { name: 'script', spec: { Runtime: 'script', PluginSpec: { script: { Source: 'exec sleep 3600' } } }, skip: unhealthy('script') },
    // Init: an init as PID 1 forwards the stop signal to sleep, so removal needs no grace period.
    { name: 'container', spec: { Runtime: 'container', ContainerSpec: { Image: TEST_IMAGE, Args: ['sleep', '3600'], Init: true } }, skip: unhealthy('container') },
    typeof assets === 'string'
      ? { name: 'vm', skip: `no test guest: ${assets}` }
      // A short grace: a guest removed while still booting has no one to hear the power button yet.
      : { name: 'vm', spec: guestSpec(assets, 'exec sleep 3600', { StopGracePeriod: 1e9 }), skip: unhealthy('vm') },
  ];
}

async function untilRunning(d: Daemon, serviceId: string, count: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const tasks = await d.tasks({ service: [serviceId] });
    if (tasks.filter((t) => t.Status.State === 'running').length >= count) return;
    const failed = tasks.find((t) => ['failed', 'rejected'].includes(t.Status.State));
    if (failed) throw new Error(`task ${failed.ID} ${failed.Status.State}: ${failed.Status.Err ?? failed.Status.Message}`);
    if (Date.now() > deadline) throw new Error(`service ${serviceId}: not ${count} running within ${WAIT_MS} ms`);
    await Bun.sleep(2);
  }
}

async function createService(d: Daemon, name: string, spec: TaskSpec, replicas: number): Promise<string> {
  const res = await d.json<{ ID: string }>('/services/create', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ Name: name, Mode: { Replicated: { Replicas: replicas } }, TaskTemplate: { ...spec, RestartPolicy: { Condition: 'none' } } }),
  });
  return res.ID;
}

async function removeService(d: Daemon, id: string): Promise<void> {
  await d.api(`/services/${id}`, { method: 'DELETE' });
  const deadline = Date.now() + WAIT_MS;
  while ((await d.tasks({ service: [id] })).length > 0 && Date.now() < deadline) await Bun.sleep(10);
}

/** ms from POST /services/create to its one task running, RUNS times. */
async function createToRunning(d: Daemon, rt: Runtime): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const id = await createService(d, `lat-${rt.name}-${i}`, rt.spec!, 1);
    await untilRunning(d, id, 1);
    samples.push(performance.now() - t0);
    await removeService(d, id);
  }
  return samples;
}

/** The anchor: `docker run -d` of the same image and command, as a user would type it. */
async function dockerRun(): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const p = Bun.spawn(['docker', 'run', '-d', '--init', TEST_IMAGE, 'sleep', '3600'], { stdout: 'pipe', stderr: 'pipe' });
    const [id, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    samples.push(performance.now() - t0);
    if (code !== 0) throw new Error(`docker run: ${err.trim()}`);
    Bun.spawnSync(['docker', 'rm', '-f', id.trim()]);
  }
  return samples;
}

function rssOfShims(dataDir: string): number {
  const r = Bun.spawnSync(['pgrep', '-f', `__process-shim ${dataDir}`]);
  return r.stdout.toString().split('\n').filter(Boolean).reduce((sum, pid) => sum + (rssOf(Number(pid)) || 0), 0);
}

/** The median of 7 RSS samples 150 ms apart: one sample is at the mercy of the daemon's GC. */
async function steadyRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 7; i++) {
    if (i) await Bun.sleep(150);
    samples.push(rssOf(pid));
  }
  return stats(samples).p50;
}

/** Daemon RSS growth and shim RSS per task, with `n` tasks of `rt` running. */
async function idleOverhead(d: Daemon, dataDir: string, rt: Runtime, n: number): Promise<{ daemonPerTask: number; shimPerTask: number }> {
  const before = await steadyRss(d.proc!.pid);
  const id = await createService(d, `idle-${rt.name}`, rt.spec!, n);
  try {
    await untilRunning(d, id, n);
    const after = await steadyRss(d.proc!.pid);
    return { daemonPerTask: (after - before) / n, shimPerTask: rssOfShims(dataDir) / n };
  } finally {
    await removeService(d, id);
  }
}

export async function run(): Promise<{ figures: Figure[]; skipped: Record<string, string> }> {
  requireBinary();
  console.log(`executors (dist/shoal, one host): create → running, p50/p95 of ${RUNS}; idle overhead per running task`);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-x-'));
  const pluginDir = join(dir, 'plugins');
  mkdirSync(pluginDir);
  copyFileSync(join(import.meta.dir, '../plugins/examples/script/script.ts'), join(pluginDir, 'script.ts'));
  const d = new Daemon(join(dir, 'data'), ['--plugin-dir', pluginDir]);
  const figures: Figure[] = [];
  const skipped: Record<string, string> = {};
  try {
    await d.start();
    // The node reports its runtimes when its agent registers, just after the API is up.
    const info = await waitFor('the node to report its runtimes', async () => {
      const i = await d.json<{ Runtimes?: Record<string, { Healthy: boolean; Message?: string }> }>('/info');
      return i.Runtimes && Object.keys(i.Runtimes).length ? i as { Runtimes: Record<string, { Healthy: boolean; Message?: string }> } : null;
    });
    const rts = runtimes(info.Runtimes);
    const p50: Record<string, number> = {};
    let anchor: number | undefined;
    if (!rts.find((r) => r.name === 'container')!.skip) {
      const s = stats(await dockerRun());
      anchor = s.p50;
      figures.push(report({ name: 'anchor: docker run -d (p50)', value: s.p50, unit: 'ms' }));
      figures.push(report({ name: 'anchor: docker run -d (p95)', value: s.p95, unit: 'ms' }));
    }
    for (const rt of rts) {
      if (rt.skip) {
        skipped[rt.name] = rt.skip;
        console.log(`  ${rt.name}: skipped (${rt.skip})`);
        continue;
      }
      const s = stats(await createToRunning(d, rt));
      p50[rt.name] = s.p50;
      const vsAnchor = rt.name === 'container' && anchor !== undefined;
      figures.push(report({
        name: `${rt.name}: create → running (p50)`, value: s.p50, unit: 'ms',
        ...(vsAnchor ? { anchor: `docker run ${anchor!.toFixed(0)} ms`, target: `≤ 1.2× anchor (${(anchor! * 1.2).toFixed(0)} ms)`, met: s.p50 <= anchor! * 1.2 } : {}),
      }));
      figures.push(report({ name: `${rt.name}: create → running (p95)`, value: s.p95, unit: 'ms' }));
      if (rt.name === 'vm') console.log('    (vm: running = QEMU up and answering QMP; the guest then boots)');
    }
    for (const rt of rts) {
      if (rt.skip) continue;
      const n = IDLE_TASKS[rt.name]!;
      const o = await idleOverhead(d, d.dataDir, rt, n);
      figures.push(report({ name: `${rt.name}: daemon RSS growth per task (${n})`, value: o.daemonPerTask / 1024, unit: 'KiB/task' }));
      if (o.shimPerTask > 0) figures.push(report({ name: `${rt.name}: shim process RSS per task`, value: o.shimPerTask / 2 ** 20, unit: 'MiB/task' }));
    }
  } finally {
    await d.stop();
    killTaskProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return { figures, skipped };
}

if (import.meta.main) await run();
