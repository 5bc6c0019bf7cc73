/**
 * Control-plane scale of one manager, in one process, without Raft (issue #18): a memoryStore with a
 * cluster and 1 000 worker nodes, the manager's stages (Manager of src/daemon/manager-stages.ts, the
 * dispatcher included), and for every node a simulated worker on an in-process dispatcher session
 * (memoryConnPair: real session frames, encoded and decoded) that registers (so the dispatcher marks
 * its node ready), heartbeats at the period the dispatcher asks for, and reports each task assigned to
 * it `running` at once. Services are created through the real API app (`app.request`).
 *
 * Measured per point (10 services × 1 000 replicas, then 100 × 1 000), each point in a fresh child
 * process so that its RSS is its own:
 *  - placements committed per second: tasks that reached a NodeID in the store / wall time from the
 *    first service create to the last assignment; and the same per second of the process's CPU time
 *    (steadier on a shared host; the simulated workers' share is in it);
 *  - time to all tasks assigned, and to all running (as the simulated workers report them);
 *  - RSS of the process (manager + simulated workers) and the store's snapshot size, converged;
 *  - p50/p99 of `service ls` and `task list` with filters, through the API app, converged.
 *
 * `bun bench/manager-scale.ts [--points 10,100] [--replicas 1000] [--nodes 1000] [--calls 50]`
 */
import { parseArgs } from 'node:util';
import { createApp } from '../src/api/app.ts';
import type { ApiDeps } from '../src/api/deps.ts';
import { initCluster } from '../src/daemon/cluster.ts';
import { Manager } from '../src/daemon/manager-stages.ts';
import { FrameChannel, memoryConnPair } from '../src/manager/dispatcher/conn.ts';
import { SESSION_FRAMES, type SessionMessages, type StatusUpdate } from '../src/manager/dispatcher/protocol.ts';
import { description, makeNode } from '../src/manager/dispatcher/testkit.ts';
import type { Dispatcher } from '../src/manager/dispatcher/index.ts';
import { memoryStore, type MemoryStore } from '../src/store/index.ts';
import type { NodeDescription, Task } from '../src/types/index.ts';
import { type Figure, report, stats } from './lib.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * One worker: its session, heartbeats, and a `running` report for every task it is given. When the
 * dispatcher closes the session it connects again a second later, as the agent does, and reports
 * again what it runs (the dispatcher drops what it already has).
 */
class SimWorker {
  channel!: FrameChannel<SessionMessages>;
  #sessionId = '';
  #seq = 0;
  #running = new Set<string>();
  #pending: StatusUpdate[] = [];
  #flushQueued = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  /** Sessions the dispatcher closed, and the reason of the first. */
  closes = 0;
  firstClose = '';

  constructor(readonly dispatcher: Dispatcher, readonly nodeId: string, readonly desc: NodeDescription) {
    this.#connect();
  }

  #connect(): void {
    const [mine, theirs] = memoryConnPair();
    const channel = new FrameChannel(mine, SESSION_FRAMES);
    this.channel = channel;
    this.#sessionId = '';
    channel.onClose((r) => {
      if (this.#stopped) return;
      if (this.closes++ === 0) this.firstClose = r;
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#connect(), 1_000);
    });
    channel.onMessage((m) => {
      switch (m.t) {
        case 'session.registered':
          this.#sessionId = m.b.sessionId;
          this.#heartbeatIn(m.b.heartbeatPeriodMs);
          return;
        case 'heartbeat.ack':
          this.#heartbeatIn(m.b.heartbeatPeriodMs);
          return;
        case 'assignments':
          if (m.b.full) this.#running.clear();
          for (const t of m.b.tasks) this.#run(t);
          return;
        default:
          return;
      }
    });
    this.dispatcher.accept(theirs);
    channel.send({ t: 'session.register', b: { nodeId: this.nodeId, description: this.desc } });
  }

  get registered(): boolean { return this.#sessionId !== ''; }
  get closed(): boolean { return this.closes > 0; }

  #heartbeatIn(ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.channel.closed) this.channel.send({ t: 'heartbeat', b: { sessionId: this.#sessionId } });
    }, ms);
  }

  #run(t: Task): void {
    if (t.DesiredState !== 'running' || this.#running.has(t.ID)) return;
    this.#running.add(t.ID);
    this.#pending.push({ taskId: t.ID, status: { Timestamp: new Date().toISOString(), State: 'running', Message: 'started' } });
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      // One frame per turn, as the agent sends them (100 tasks a node stay far under its bounds).
      const updates = this.#pending.splice(0);
      if (!this.channel.closed) this.channel.send({ t: 'tasks.status', b: { sessionId: this.#sessionId, seq: ++this.#seq, updates } });
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

function apiDeps(store: MemoryStore): ApiDeps {
  return {
    store,
    nodeId: () => 'manager-0',
    initCluster: async () => { throw new Error('not in this bench'); },
    validateTaskSpec: () => null,
    // eslint-disable-next-line require-yield
    async *taskLogs() { return; },
    version: { Version: 'bench', ApiVersion: '1.47', Os: 'linux', Arch: 'x86_64' },
  };
}

const rss = (): number => {
  Bun.gc(true);
  return process.memoryUsage().rss;
};

async function until(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface PointResult {
  services: number;
  replicas: number;
  nodes: number;
  tasks: number;
  placementsPerSec: number;
  /**
   * Placements per second of this process's CPU time (user + system) over the same span: on a shared
   * host the wall-clock figure moves with other jobs, this one much less.
   */
  placementsPerCpuSec: number;
  cpuMs: number;
  /** Tasks given a node in all: more than `tasks` when some were placed again (their node went down). */
  placements: number;
  assignedMs: number;
  runningMs: number;
  createMs: number;
  rssBytes: number;
  rssBaseBytes: number;
  snapshotBytes: number;
  /** Worker sessions the dispatcher closed (each worker connects again), and why the first was. */
  sessionsClosed: number;
  firstClose: string;
  api: Record<string, { p50: number; p99: number; items: number; bytes: number }>;
}

/** One scale point, in this process. */
async function point(services: number, replicas: number, nodeCount: number, calls: number, timeoutMs: number): Promise<PointResult> {
  const store = memoryStore();
  const nodeDesc: NodeDescription = { ...description('worker'), Runtimes: [{ Name: 'container', Healthy: true }] };
  await initCluster(store, 'manager-0', description('manager-0'));
  const ids = Array.from({ length: nodeCount }, (_, i) => `bench-node-${String(i).padStart(5, '0')}`);
  await store.update((tx) => { for (const id of ids) tx.create('nodes', makeNode(id)); });
  const logs: string[] = [];
  // Stage and dispatcher messages other than sessions registering: the first few at once, all counted.
  const manager = new Manager(store, (m) => {
    if (/ registered \(session/.test(m)) return;
    if (logs.push(m) <= 10) console.error(`  [manager] ${m}`);
  });
  await manager.start();
  const workers = ids.map((id) => new SimWorker(manager.dispatcher, id, { ...nodeDesc, Hostname: id }));
  await until(() => workers.every((w) => w.registered) && store.list('nodes').filter((n) => n.Status.State === 'ready').length === nodeCount, 'nodes ready', timeoutMs);
  const rssBase = rss();

  const app = createApp(apiDeps(store));
  const total = services * replicas;
  // Placements: tasks whose NodeID went from empty to a node (each counted once). Convergence: every
  // task meant to run is on a node / reported running, `total` of them (replacements included).
  let assigned = 0;
  let tAssigned = 0;
  let tRunning = 0;
  let cpuAssigned: NodeJS.CpuUsage | null = null;
  const onNode = new Set<string>();
  const runningNow = new Set<string>();
  store.watch((ev) => {
    if (ev.kind === 'commit' || ev.table !== 'tasks') return;
    const t = ev.object as Task;
    if (ev.kind === 'update' && t.NodeID && !(ev.old as Task).NodeID) assigned++;
    const live = ev.kind !== 'delete' && t.DesiredState === 'running';
    if (live && t.NodeID) onNode.add(t.ID); else onNode.delete(t.ID);
    if (live && t.Status.State === 'running') runningNow.add(t.ID); else runningNow.delete(t.ID);
    if (!tAssigned && onNode.size === total) { tAssigned = performance.now(); cpuAssigned = process.cpuUsage(); }
    if (!tRunning && runningNow.size === total) tRunning = performance.now();
  });
  const running = { get size() { return runningNow.size; } };

  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < services; i++) {
    const res = await app.request('/services/create', {
      method: 'POST',
      body: JSON.stringify({
        Name: `svc-${String(i).padStart(3, '0')}`,
        Labels: { tier: i % 2 ? 'web' : 'worker' },
        TaskTemplate: { ContainerSpec: { Image: 'nginx:1.27-alpine', Env: ['MODE=bench', `SHARD=${i}`], Init: false, DNSConfig: {} } },
        Mode: { Replicated: { Replicas: replicas } },
      }),
    });
    if (res.status !== 201) throw new Error(`service create: ${res.status} ${await res.text()}`);
  }
  const createMs = performance.now() - t0;
  const progress = setInterval(() => {
    const ready = store.list('nodes').filter((n) => n.Status.State === 'ready').length;
    console.error(`  … ${((performance.now() - t0) / 1000).toFixed(0)} s: ${assigned} placed, ${onNode.size} on a node, ${running.size} running, ${ready} nodes ready, ${workers.reduce((n, w) => n + w.closes, 0)} sessions closed`);
  }, 5_000);
  await until(() => tAssigned > 0, `${total} tasks on a node (at ${onNode.size})`, timeoutMs);
  await until(() => tRunning > 0, `${total} tasks running (at ${running.size})`, timeoutMs);
  const assignedMs = tAssigned - t0;
  const cpuMs = (cpuAssigned!.user + cpuAssigned!.system - cpu0.user - cpu0.system) / 1000;
  const runningMs = tRunning - t0;
  clearInterval(progress);
  // Converged: measure memory and the API once the stages have stopped writing (no commit for 1 s).
  let lastIndex = -1;
  let quietSince = Date.now();
  await until(() => {
    if (store.index !== lastIndex) { lastIndex = store.index; quietSince = Date.now(); }
    return Date.now() - quietSince >= 1_000;
  }, 'the store to stop changing', timeoutMs);
  const snapshotBytes = store.snapshot().byteLength;
  const rssBytes = rss();
  if (process.env.MSCALE_HEAP) {
    const { heapStats } = await import('bun:jsc');
    const h = heapStats();
    const top = Object.entries(h.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 25);
    console.error(`  heap ${(h.heapSize / MiB).toFixed(0)} MiB, capacity ${(h.heapCapacity / MiB).toFixed(0)} MiB, extra ${(h.extraMemorySize / MiB).toFixed(0)} MiB, objects ${h.objectCount}; rss ${(rssBytes / MiB).toFixed(0)} MiB`);
    console.error(`  ${top.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }

  const api: PointResult['api'] = {};
  const node = ids[Math.floor(nodeCount / 2)]!;
  const queries: [string, string][] = [
    ['service ls (status=true)', '/services?status=true'],
    ['service ls (label filter)', `/services?filters=${encodeURIComponent(JSON.stringify({ label: ['tier=web'] }))}`],
    ['task list service=', `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: ['svc-007'] }))}`],
    ['task list service= desired-state=running', `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: ['svc-007'], 'desired-state': ['running'] }))}`],
    ['task list node=', `/tasks?filters=${encodeURIComponent(JSON.stringify({ node: [node] }))}`],
    ['task list node= desired-state=running', `/tasks?filters=${encodeURIComponent(JSON.stringify({ node: [node], 'desired-state': ['running'] }))}`],
    ['task list desired-state=running (all)', `/tasks?filters=${encodeURIComponent(JSON.stringify({ 'desired-state': ['running'] }))}`],
  ];
  for (const [name, path] of queries) {
    const samples: number[] = [];
    let items = 0;
    let bytes = 0;
    // The whole-cluster listing returns every task: fewer calls keep the run short.
    const n = name.endsWith('(all)') ? Math.min(calls, 10) : calls;
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      const res = await app.request(path);
      const text = await res.text();
      samples.push(performance.now() - s);
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text.slice(0, 200)}`);
      bytes = text.length;
      items = (JSON.parse(text) as unknown[]).length;
    }
    const st = stats(samples);
    api[name] = { p50: st.p50, p99: st.p99, items, bytes };
  }

  const sessionsClosed = workers.reduce((n, w) => n + w.closes, 0);
  const firstClose = workers.find((w) => w.firstClose)?.firstClose ?? '';
  for (const w of workers) w.stop();
  await manager.stop();
  if (logs.length) console.error(`  [manager] ${logs.length} messages in all`);
  return {
    services, replicas, nodes: nodeCount, tasks: total,
    placementsPerSec: total / (assignedMs / 1000), placementsPerCpuSec: total / (cpuMs / 1000), cpuMs, placements: assigned, assignedMs, runningMs, createMs,
    rssBytes, rssBaseBytes: rssBase, snapshotBytes, sessionsClosed, firstClose, api,
  };
}

function figures(r: PointResult): Figure[] {
  const k = `${r.tasks / 1000}k tasks`;
  const out: Figure[] = [
    report({ name: `${k}: placements committed/s`, value: Math.round(r.placementsPerSec), unit: 'tasks/s', target: 'goal ≥ 10,000/s', anchor: 'Nomad C1M 3,750/s', met: r.placementsPerSec >= 10_000 }),
    report({ name: `${k}: placements per CPU-second of the process`, value: Math.round(r.placementsPerCpuSec), unit: 'tasks/s', anchor: `${(r.cpuMs / 1000).toFixed(1)} s of CPU to all assigned (simulated workers and API included)` }),
    report({ name: `${k}: create → all assigned`, value: r.assignedMs / 1000, unit: 's' }),
    report({ name: `${k}: create → all running`, value: r.runningMs / 1000, unit: 's', anchor: 'simulated workers report running at once' }),
    report({ name: `${k}: manager RSS, converged`, value: r.rssBytes / MiB, unit: 'MiB', target: '< 1 GiB', met: r.rssBytes < GiB }),
    report({ name: `${k}: store snapshot size`, value: r.snapshotBytes / MiB, unit: 'MiB', target: '< 1 GiB', met: r.snapshotBytes < GiB }),
  ];
  for (const [name, a] of Object.entries(r.api)) {
    out.push(report({ name: `${k}: ${name} p50`, value: a.p50, unit: 'ms', anchor: `${a.items} items, ${(a.bytes / 1024).toFixed(0)} KiB` }));
    out.push(report({ name: `${k}: ${name} p99`, value: a.p99, unit: 'ms' }));
  }
  return out;
}

export async function run(argv: string[] = []): Promise<{ points: PointResult[]; figures: Figure[] }> {
  const { values } = parseArgs({
    args: argv,
    options: {
      points: { type: 'string', default: '10,100' },
      replicas: { type: 'string', default: '1000' },
      nodes: { type: 'string', default: '1000' },
      calls: { type: 'string', default: '50' },
      'timeout-s': { type: 'string', default: '1800' },
    },
    strict: true,
  });
  const points = values.points!.split(',').map(Number);
  console.log(`manager scale (one process, memory log, ${values.nodes} simulated workers on dispatcher sessions)`);
  const results: PointResult[] = [];
  const figs: Figure[] = [];
  for (const services of points) {
    // Each point in a child process of its own: RSS is then that point's alone.
    const child = Bun.spawn([process.execPath, import.meta.path, '--child', String(services), values.replicas!, values.nodes!, values.calls!, values['timeout-s']!], {
      stdout: 'pipe', stderr: 'inherit',
    });
    const out = await new Response(child.stdout).text();
    if ((await child.exited) !== 0) throw new Error(`point ${services} services failed: ${out}`);
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as PointResult;
    results.push(r);
    figs.push(...figures(r));
    if (r.sessionsClosed) console.log(`  (${r.sessionsClosed} worker sessions were closed by the dispatcher during the run, the first: ${r.firstClose})`);
  }
  return { points: results, figures: figs };
}

if (import.meta.main) {
  if (process.argv[2] === '--child') {
    const [services, replicas, nodes, calls, timeoutS] = process.argv.slice(3).map(Number);
    const r = await point(services!, replicas!, nodes!, calls!, timeoutS! * 1000);
    console.log(JSON.stringify(r));
    process.exit(0);
  } else {
    const { writeResult } = await import('./lib.ts');
    const result = await run(process.argv.slice(2));
    console.log(`  → ${writeResult('manager-scale', result)}`);
  }
}
