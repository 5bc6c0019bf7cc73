/**
 * A rolling update of 100 process replicas, parallelism 10, through dist/shoal's API: wall time from
 * the update request to the last replacement running, and the lowest count of serving (running)
 * replicas seen during it, stop-first and start-first. Next to them, the ideal: ceil(100/10)
 * batches × one task's replacement time (update request → new task running, measured alone on a
 * one-replica service), and the floor the order promises (replicas − parallelism; replicas).
 * Also the time to create 100 replicas from nothing: what this host's pipeline (scheduling, raft
 * writes, one shim process per task) allows at all, which bounds any rollout from below.
 * The count is sampled (every poll of /tasks, about every 50 ms): a dip shorter than a poll can be
 * missed, so the lowest is an upper bound on the true one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, killTaskProcesses, requireBinary } from '../test/harness/index.ts';
import { type Figure, report, stats } from './lib.ts';

const REPLICAS = 100;
const PARALLELISM = 10;
const POLL_MS = 50;
const BOUND_MS = 300_000;

const spec = (name: string, replicas: number, v: string, order: 'stop-first' | 'start-first') => ({
  Name: name,
  Mode: { Replicated: { Replicas: replicas } },
  TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sleep', '3600'], Env: [`V=${v}`] } },
  UpdateConfig: { Parallelism: PARALLELISM, Monitor: 0, Order: order },
});

async function post(d: Daemon, path: string, body: unknown): Promise<any> {
  return d.json(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Running tasks of the service, and how many of them are made from env `V=v`. */
async function count(d: Daemon, id: string, v: string): Promise<{ running: number; fresh: number }> {
  const ts = (await d.tasks({ service: [id] })).filter((t) => t.Status.State === 'running');
  return { running: ts.length, fresh: ts.filter((t) => t.DesiredState === 'running' && (t.Spec.ProcessSpec?.Env ?? []).includes(`V=${v}`)).length };
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + BOUND_MS;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`bench: ${what} not within ${BOUND_MS} ms`);
    await Bun.sleep(5);
  }
}

/** Update request → every replica running the new spec; the lowest running count sampled meanwhile. */
async function rollout(d: Daemon, id: string, name: string, replicas: number, v: string, order: 'stop-first' | 'start-first'): Promise<{ wallMs: number; lowest: number; samples: number }> {
  const svc = await d.json(`/services/${id}`);
  const t0 = performance.now();
  await post(d, `/services/${id}/update?version=${svc.Version.Index}`, spec(name, replicas, v, order));
  let lowest = Infinity;
  let samples = 0;
  for (;;) {
    const c = await count(d, id, v);
    samples++;
    lowest = Math.min(lowest, c.running);
    if (c.fresh === replicas) break;
    if (performance.now() - t0 > BOUND_MS) throw new Error(`bench: rollout not done within ${BOUND_MS} ms (${c.fresh}/${replicas})`);
    await Bun.sleep(POLL_MS);
  }
  return { wallMs: performance.now() - t0, lowest, samples };
}

export async function run(): Promise<{ figures: Figure[]; raw: unknown }> {
  requireBinary();
  console.log(`rolling update (dist/shoal, one host): ${REPLICAS} process replicas, parallelism ${PARALLELISM}`);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-ru-'));
  const d = new Daemon(dir);
  const figures: Figure[] = [];
  try {
    await d.start();
    // One task's replacement time, alone: the unit of the ideal.
    const one = await post(d, '/services/create', spec('one', 1, '0', 'stop-first'));
    await until('one running', async () => (await count(d, one.ID, '0')).fresh === 1);
    const singles: number[] = [];
    for (let i = 1; i <= 5; i++) singles.push((await rollout(d, one.ID, 'one', 1, String(i), 'stop-first')).wallMs);
    const taskMs = stats(singles).p50;
    figures.push(report({ name: 'one task replaced (update → running, p50 of 5)', value: taskMs, unit: 'ms' }));

    // How fast this host starts 100 tasks at all: the throughput a rollout cannot beat.
    const c0 = performance.now();
    const many = await post(d, '/services/create', spec('many', REPLICAS, '0', 'stop-first'));
    await until(`${REPLICAS} running`, async () => (await count(d, many.ID, '0')).fresh === REPLICAS);
    const createMs = performance.now() - c0;
    figures.push(report({ name: 'create 100 replicas → all running (no rollout)', value: createMs, unit: 'ms' }));
    const ideal = Math.ceil(REPLICAS / PARALLELISM) * taskMs;
    const stop = await rollout(d, many.ID, 'many', REPLICAS, '1', 'stop-first');
    figures.push(report({ name: 'stop-first: update → all 100 replaced', value: stop.wallMs, unit: 'ms', anchor: `ideal ceil(100/10) × ${taskMs.toFixed(0)} ms = ${ideal.toFixed(0)} ms (${(stop.wallMs / ideal).toFixed(2)}×)` }));
    figures.push(report({ name: 'stop-first: lowest serving replicas', value: stop.lowest, unit: 'tasks', target: `≥ ${REPLICAS - PARALLELISM} (replicas − parallelism)`, met: stop.lowest >= REPLICAS - PARALLELISM }));
    const start = await rollout(d, many.ID, 'many', REPLICAS, '2', 'start-first');
    figures.push(report({ name: 'start-first: update → all 100 replaced', value: start.wallMs, unit: 'ms', anchor: `ideal ${ideal.toFixed(0)} ms (${(start.wallMs / ideal).toFixed(2)}×)` }));
    figures.push(report({ name: 'start-first: lowest serving replicas', value: start.lowest, unit: 'tasks', target: `≥ ${REPLICAS} (replicas)`, met: start.lowest >= REPLICAS }));
    return { figures, raw: { taskMs: singles, idealMs: ideal, createMs, stopFirst: stop, startFirst: start, pollMs: POLL_MS } };
  } finally {
    await d.stop();
    killTaskProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
