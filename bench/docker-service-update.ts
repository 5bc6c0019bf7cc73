/**
 * Issue 16: "a non-detached `docker service update` of 3 replicas took about 37 s". The real docker
 * CLI against dist/shoal, a 3-replica container service with Docker's UpdateConfig defaults
 * (parallelism 1, delay 0, monitor 5 s, stop-first, 10 s stop grace): the CLI's wall time, and the
 * timeline of task states from /events split per slot into "stop" (the old task asked to stop →
 * shutdown), "start" (its replacement created → running) and the tail (last running → update
 * completed: the monitor period, which the CLI's own "verify: Waiting 5 seconds" overlaps).
 *
 * What the defaults imply: replicas × (stop + start) + monitor. Two workloads: `sleep` as PID 1,
 * which ignores SIGTERM (each stop is the whole 10 s grace, then SIGKILL), and the same with
 * `--init`, whose init forwards SIGTERM (each stop takes a moment).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_IMAGE } from '../test/fixtures/images/engine.ts';
import { Daemon, killTaskProcesses, requireBinary } from '../test/harness/index.ts';
import { type Figure, report } from './lib.ts';

const REPLICAS = 3;
const MONITOR_MS = 5_000;
const BOUND_MS = 180_000;

interface Slot { slot: string; stopMs: number; startMs: number }

async function docker(d: Daemon, ...args: string[]): Promise<{ code: number; out: string; ms: number }> {
  const t0 = performance.now();
  const p = Bun.spawn(['docker', ...args], { stdout: 'pipe', stderr: 'pipe', env: { ...(process.env as Record<string, string>), DOCKER_HOST: `unix://${d.socket}`, DOCKER_CLI_HINTS: 'false' } });
  const timer = setTimeout(() => p.kill(), BOUND_MS);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`docker ${args.join(' ')}: ${err}${out}`);
  return { code, out: out + err, ms: performance.now() - t0 };
}

interface Ev { Type: string; Action: string; timeNano: number; Actor: { Attributes: Record<string, string> } }

/** The per-slot breakdown from the events between `sinceS` and now. */
async function timeline(d: Daemon, service: string, sinceS: number, startNs: number): Promise<{ slots: Slot[]; tailMs: number; events: string[] }> {
  const res = await d.api(`/v1.47/events?since=${Math.floor(sinceS)}&until=${Math.ceil(Date.now() / 1000) + 1}`);
  const ours = (e: Ev) => (e.Type === 'task' ? e.Actor.Attributes.service : e.Actor.Attributes.name) === service;
  const evs = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev).filter((e) => e.timeNano >= startNs && ours(e));
  const ms = (ns: number) => (ns - startNs) / 1e6;
  const events = evs.map((e) => `${ms(e.timeNano).toFixed(0).padStart(6)} ms ${e.Type} ${e.Actor.Attributes.name} ${e.Actor.Attributes['state.new'] ?? e.Actor.Attributes['updatestate.new'] ?? e.Action}`);
  const slots: Slot[] = [];
  // Stop-first, parallelism 1: a slot's stop begins when the previous slot's replacement runs.
  let stopAsked = startNs;
  let created = 0;
  let lastRunning = startNs;
  for (const e of evs) {
    if (e.Type !== 'task') continue;
    const a = e.Actor.Attributes;
    if (a['state.new'] === 'shutdown') slots.push({ slot: a.name!, stopMs: (e.timeNano - stopAsked) / 1e6, startMs: 0 });
    else if (a['state.new'] === 'new') created = e.timeNano;
    else if (a['state.new'] === 'running' && slots.length) {
      slots[slots.length - 1]!.startMs = (e.timeNano - created) / 1e6;
      stopAsked = lastRunning = e.timeNano;
    }
  }
  const done = evs.find((e) => e.Type === 'service' && e.Actor.Attributes['updatestate.new'] === 'completed');
  return { slots, tailMs: done ? (done.timeNano - lastRunning) / 1e6 : NaN, events };
}

async function measure(d: Daemon, name: string, init: boolean, figures: Figure[]) {
  await docker(d, 'service', 'create', '--name', name, '--replicas', String(REPLICAS), ...(init ? ['--init'] : []), TEST_IMAGE, 'sleep', '100000');
  const sinceS = Date.now() / 1000 - 1;
  const startNs = Date.now() * 1e6;
  const cli = await docker(d, 'service', 'update', '--env-add', 'V=1', name);
  const t = await timeline(d, name, sinceS, startNs);
  const sum = (k: keyof Omit<Slot, 'slot'>) => t.slots.reduce((n, s) => n + s[k], 0);
  const implied = sum('stopMs') + sum('startMs') + MONITOR_MS;
  const label = init ? 'with --init (SIGTERM handled)' : 'sleep as PID 1 (ignores SIGTERM)';
  figures.push(report({ name: `${label}: docker service update`, value: cli.ms, unit: 'ms', anchor: `defaults imply Σ(stop+start) + monitor = ${implied.toFixed(0)} ms` }));
  figures.push(report({ name: `${label}: Σ stop (ask → shutdown)`, value: sum('stopMs'), unit: 'ms' }));
  figures.push(report({ name: `${label}: Σ start (new → running)`, value: sum('startMs'), unit: 'ms' }));
  figures.push(report({ name: `${label}: last running → completed`, value: t.tailMs, unit: 'ms', anchor: `monitor ${MONITOR_MS} ms` }));
  await docker(d, 'service', 'rm', name);
  return { cliMs: cli.ms, impliedMs: implied, ...t };
}

export async function run(): Promise<{ figures: Figure[]; raw: unknown }> {
  requireBinary();
  if (!Bun.which('docker')) throw new Error('needs the docker CLI and a Docker Engine');
  console.log(`docker service update (the docker CLI, dist/shoal, one host): ${REPLICAS} container replicas, UpdateConfig defaults`);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-dsu-'));
  const d = new Daemon(dir);
  const figures: Figure[] = [];
  try {
    await d.start();
    const ignoring = await measure(d, 'upd-sleep', false, figures);
    const handling = await measure(d, 'upd-init', true, figures);
    return { figures, raw: { ignoring, handling } };
  } finally {
    await d.stop();
    killTaskProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
