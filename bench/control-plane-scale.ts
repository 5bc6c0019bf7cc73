/**
 * Control-plane scale (issue #18): 3 real managers (dist/shoal processes on loopback, through the
 * test harness) and N simulated worker nodes, then services of the mock runtime added in two
 * steps (a tenth of the services, then the rest: 10k then 100k tasks at the defaults).
 *
 * What is real and what is simulated:
 *  - Managers: real, unchanged dist/shoal daemons (raft over libp2p, WAL and snapshots on disk,
 *    the API on their unix sockets). They are drained (no tasks on them) and the automatic manager
 *    count is turned off, so that no simulated node is ever promoted. The dispatcher's heartbeat
 *    period is set to --heartbeat-s (default 5 s, Docker Swarm's default; shoal's own is 1 s).
 *  - Worker nodes: EVERY one is a real agent at the transport and session layers (bench/sim-agents.ts):
 *    its own key and libp2p node (TCP + TLS 1.3 + yamux), joined with the worker token, authenticated
 *    with its cluster certificate, holding a dispatcher session with the production SessionClient.
 *    None is simulated "at the session layer" (a session is bound to the node of the certificate on
 *    its connection, so one libp2p node cannot carry several nodes' sessions without changing the
 *    dispatcher). They live in --agent-procs child processes (bun) on the same 2-core host.
 *  - Executors: simulated. An agent runs nothing; it reports an assigned task RUNNING at once (and
 *    one told to stop SHUTDOWN). The figures are the control plane's alone.
 *  - --decline-held-acks (off by default): the agents leave `acks.held` out of theirs, so every
 *    status frame gets an ack frame of its own, as before stop 28 (for A/B runs of one build).
 *  - --decline-net-tables (off by default): the agents leave `networks` and `endpoints` out of their
 *    registration's `accepts` (a real worker asks for them), to measure without the per-join
 *    network-table broadcast; the run prints a NOTE then.
 *
 * Figures, measured in one run, each printed next to its anchor or goal:
 *  - placements/s: tasks of a step / (last new assignment seen by an agent − first service create
 *    call). By default every service of a step is created at once (`--create-concurrency all`), as
 *    C1M (the anchor) submitted its jobs; `--create-concurrency 1` gives the rate of one client
 *    creating them one after another, paced by each create's commit. An agent sees a task only
 *    once the scheduler's write is committed (the dispatcher watches the applied store), so these
 *    are committed placements.
 *  - convergence: first create call → every task of the step reported RUNNING and acknowledged
 *    (the dispatcher acks a status batch once written to the store); checked through GET /tasks.
 *  - each manager's RSS (/proc: VmRSS after each step, and its peak so far, VmHWM) and bytes of its
 *    raft dir (WAL + snapshots) after each step.
 *  - latency of GET /services and GET /tasks?filters={service, desired-state: running} on the leader.
 *  - failover: kill -9 of the leader → a survivor's term rises → its GET /raft says leader → a write
 *    (a service scaled by one) accepted → every agent registered again → the new task running.
 *  - raft terms gone by in each step (each one a leader lost).
 *
 * --keep-logs DIR writes each manager's output (stdout and stderr) to DIR/<name>.log at the end.
 *
 * docs/scale.md has the flags, the figures measured so far and what limits them.
 *
 *   bun bench/control-plane-scale.ts [--nodes 1000] [--services 100] [--replicas 1000] [--agent-procs 2]
 *   bun bench/control-plane-scale.ts --smoke        # 5 nodes, 2 services × 10
 *
 * Writes bench/results/control-plane-scale.json (or --out NAME). Not part of the test suite.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cluster, type Daemon, leaderOf, requireBinary } from '../test/harness/index.ts';
import { type Failover, failover } from './cp-failover.ts';
import { call, costBetween, costReading, footprint, latency, type ManagerFootprint, post, raftLeader, type StepCost, until } from './cp-probes.ts';
import { DEFAULT_ELECTION_TICKS, DEFAULT_TICK_MS } from '../src/raft-host/host-options.ts';
import { type Figure, report, writeResult } from './lib.ts';
import { type AgentCounts, ChildAgents, SIM_RUNTIME, sumCounts } from './sim-agents.ts';

const USAGE = `usage: bun bench/control-plane-scale.ts [--nodes N] [--services S] [--replicas R] [--first-services F] [--create-concurrency K|all] [--settle-s S]
       [--agent-procs P] [--join-concurrency C] [--api-samples K] [--bound-s SECONDS] [--heartbeat-s 5] [--election-tick T] [--decline-net-tables] [--decline-held-acks] [--no-failover] [--keep-logs DIR] [--out NAME] [--smoke]`;

const { values: opt } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    services: { type: 'string', default: '100' },
    replicas: { type: 'string', default: '1000' },
    'first-services': { type: 'string' },
    'create-concurrency': { type: 'string', default: 'all' },
    'settle-s': { type: 'string', default: '15' },
    'agent-procs': { type: 'string', default: '2' },
    'join-concurrency': { type: 'string', default: '4' },
    'decline-net-tables': { type: 'boolean', default: false },
    'decline-held-acks': { type: 'boolean', default: false },
    'api-samples': { type: 'string', default: '30' },
    'bound-s': { type: 'string', default: '1800' },
    'heartbeat-s': { type: 'string', default: '5' },
    'election-tick': { type: 'string' },
    'no-failover': { type: 'boolean', default: false },
    'keep-logs': { type: 'string' },
    out: { type: 'string', default: 'control-plane-scale' },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

function positive(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const smoke = opt.smoke;
const P = {
  nodes: smoke ? 5 : positive('nodes', opt.nodes),
  services: smoke ? 2 : positive('services', opt.services),
  replicas: smoke ? 10 : positive('replicas', opt.replicas),
  agentProcs: smoke ? 1 : positive('agent-procs', opt['agent-procs']),
  joinConcurrency: positive('join-concurrency', opt['join-concurrency']),
  apiSamples: smoke ? 5 : positive('api-samples', opt['api-samples']),
  boundMs: positive('bound-s', opt['bound-s']) * 1000,
  heartbeatS: positive('heartbeat-s', opt['heartbeat-s']),
  /** The cluster's Spec.Raft.ElectionTick (ticks of 50 ms); absent: the default (14). */
  electionTick: opt['election-tick'] !== undefined ? positive('election-tick', opt['election-tick']) : undefined,
  failover: !opt['no-failover'],
  declineNetTables: opt['decline-net-tables'],
  declineHeldAcks: opt['decline-held-acks'],
  firstServices: 0,
  /**
   * Service create calls in flight at once in a step (1: each after the last answered; `all`, the
   * default: every service of the step at once, as C1M submitted its jobs: the placements a second
   * of a backlog, not of one client's round trips).
   */
  createConcurrency: opt['create-concurrency'] === 'all' ? 'all' as const : positive('create-concurrency', opt['create-concurrency']),
  /** Seconds between the last session and the idle window: what the joins left to do settles. */
  settleS: smoke ? 0 : positive('settle-s', opt['settle-s'], 0),
};
P.firstServices = opt['first-services'] !== undefined ? positive('first-services', opt['first-services']) : Math.max(1, Math.ceil(P.services / 10));
if (P.firstServices > P.services) {
  console.error(`--first-services ${P.firstServices}: at most --services (${P.services})`);
  process.exit(2);
}
P.agentProcs = Math.min(P.agentProcs, P.nodes);

const started = performance.now();
const log = (m: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(7)} s] ${m}`);
const MiB = 2 ** 20;
const C1M = 3_750; // Nomad C1M (2016): 1,000,000 containers on 5,000 hosts, 3,750 placements/s
const GOAL = 10_000;

// ------------------------------------------------------------------ cleanup on every way out

const pools: ChildAgents[] = [];
let cluster = null as Cluster | null;
function cleanupNow(): void {
  for (const p of pools) p.killNow();
  cluster?.dispose(); // SIGKILL the daemons, remove their dirs (the harness's exit hook does it too)
}
process.on('exit', cleanupNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping the agents and the managers`);
    raw.error = `stopped by ${sig}`;
    try { console.log(`  → ${writeResult(opt.out!, { params: P, completed: false, figures, raw })}`); } catch {}
    cleanupNow();
    process.exit(130);
  });
}

/** The most frequent reasons sessions ended, for progress lines. */
function topReasons(c: AgentCounts, n = 3): string {
  const top = Object.entries(c.reasons).sort((a, b) => b[1] - a[1]).slice(0, n);
  return top.length ? `; sessions ended: ${top.map(([k, v]) => `${v}× ${k}`).join(' | ')}` : '';
}

async function counts(): Promise<AgentCounts> {
  return sumCounts(await Promise.all(pools.map((p) => p.counts())));
}

// ------------------------------------------------------------------ the cluster

async function boot(): Promise<{ managers: Daemon[]; leader: Daemon; ids: Map<Daemon, string> }> {
  requireBinary();
  cluster = Cluster.loopback();
  cluster.startTimeoutMs = 60_000;
  const { managers, ids } = await cluster.boot({ managers: 3, workers: 0, readyMs: 90_000 });
  const leader = await leaderOf(managers, ids, 60_000);
  // No automatic promotion of a simulated node (it could not serve raft), whatever happens below;
  // and the dispatcher's heartbeat period (Swarm's default is 5 s, shoal's 1 s).
  const sw = await call(leader, '/swarm');
  await post(leader, `/swarm/update?version=${sw.Version.Index}`, {
    ...sw.Spec,
    Managers: { ...sw.Spec.Managers, Desired: -1 },
    Dispatcher: { ...sw.Spec.Dispatcher, HeartbeatPeriod: P.heartbeatS * 1e9 },
    ...(P.electionTick ? { Raft: { ...sw.Spec.Raft, ElectionTick: P.electionTick } } : {}),
  });
  for (const m of managers) {
    const id = ids.get(m)!;
    const n = await call(leader, `/nodes/${id}`);
    await post(leader, `/nodes/${id}/update?version=${n.Version.Index}`, { ...n.Spec, Availability: 'drain' });
  }
  return { managers, leader, ids };
}

async function startAgents(managers: Daemon[], leader: Daemon): Promise<{ joinSeconds: number }> {
  const token = (await cluster!.tokensOf(leader)).worker;
  const addrs = [leader.addr, ...managers.filter((m) => m !== leader).map((m) => m.addr)];
  const t0 = performance.now();
  const per = Math.ceil(P.nodes / P.agentProcs);
  const starts: Promise<void>[] = [];
  for (let k = 0; k < P.agentProcs; k++) {
    const count = Math.min(per, P.nodes - k * per);
    if (count <= 0) break;
    const pool = new ChildAgents(`agents-${k}`);
    pools.push(pool);
    starts.push(pool.start({ managers: addrs, token, count, prefix: `sim-${k}-`, joinConcurrency: P.joinConcurrency, decline: [...(P.declineNetTables ? ['networks', 'endpoints'] : []), ...(P.declineHeldAcks ? ['acks.held'] : [])] }));
  }
  const progress = setInterval(() => { void counts().then((c) => log(`agents: ${c.joined} joined, ${c.connected} in session${topReasons(c)}`), () => {}); }, 10_000);
  try {
    await Promise.race([Promise.all(starts), Bun.sleep(P.boundMs).then(() => { throw new Error(`${P.nodes} agents did not join within ${P.boundMs / 1000} s`); })]);
    await until(`${P.nodes} agent sessions registered`, async () => (await counts()).connected === P.nodes, 120_000 + P.nodes * 100, 500);
  } finally {
    clearInterval(progress);
  }
  const joinSeconds = (performance.now() - t0) / 1000;
  await until(`${P.nodes + 3} nodes ready in GET /nodes`, async () => {
    const ns = await call<any[]>(leader, '/nodes');
    return ns.length === P.nodes + 3 && ns.every((n) => n.Status.State === 'ready');
  }, 120_000, 1000);
  return { joinSeconds };
}

// ------------------------------------------------------------------ one step of services

interface StepResult {
  tasks: number;
  totalTasks: number;
  createSeconds: number;
  /** The create calls of the step: how many, their p50 and slowest. */
  creates: { n: number; p50Ms: number; maxMs: number; seconds: number };
  placementsPerS: number;
  /** Frames the agents received with assignment changes, and status frames they sent, in the step. */
  frames: { assignments: number; status: number };
  placeSeconds: number;
  convergeSeconds: number;
  managers: ManagerFootprint[];
  /** New task ids the agents saw in the step: more than `tasks` when tasks were placed again (nodes marked down). */
  assignmentsSeen: number;
  /** Raft terms gone by during the step: each is a leader lost (an overloaded leader misses its heartbeats). */
  leaderChanges: number;
  /** The manager that led when latency was measured. */
  leader: string;
  /** From the first create call until converged: CPU seconds per process and the leader's raft entries. */
  cost: StepCost;
  api: { services: Awaited<ReturnType<typeof latency>>; tasksFiltered: Awaited<ReturnType<typeof latency>> };
}

const svcName = (i: number) => `cp-${i}`;
/** How long the idle cost (no task moving) is measured before the first step. */
const IDLE_WINDOW_MS = 5_000;

/** The current raft term as the first manager that answers sees it. */
async function term(managers: Daemon[]): Promise<number> {
  return until('a manager answering GET /raft', async () => {
    for (const m of managers) {
      if (!m.isRunning) continue;
      const r = await m.api('/raft', { signal: AbortSignal.timeout(5_000) }).catch(() => null);
      if (r?.ok) return (await r.json() as { Term: number }).Term;
    }
    return null;
  }, 60_000);
}

/**
 * Create a service, through `via` (a follower forwards to the leader). A write that times out
 * during a leader change "may still take effect": the name tells whether it did before trying again.
 */
async function createService(via: Daemon, name: string): Promise<void> {
  await until(`service ${name} created`, async () => {
    try {
      await post(via, '/services/create', {
        Name: name,
        TaskTemplate: { Runtime: SIM_RUNTIME, MockSpec: {} },
        Mode: { Replicated: { Replicas: P.replicas } },
      });
      return true;
    } catch (err) {
      const r = await via.api(`/services/${name}`).catch(() => null);
      if (r?.ok) return true;
      throw err;
    }
  }, P.boundMs, 500);
}

async function step(all: Daemon[], via: Daemon, from: number, to: number): Promise<StepResult> {
  const tasks = (to - from) * P.replicas;
  const totalTasks = to * P.replicas;
  const before = await counts();
  const termBefore = await term(all);
  log(`step: services ${from}..${to - 1} (${tasks} tasks; ${totalTasks} in all)`);
  const agentProcs = () => pools.map((p) => ({ name: p.name, pid: p.proc.pid }));
  const costBefore = await costReading(all, via, agentProcs());
  const t0 = Date.now();
  let nextService = from;
  const createMs: number[] = [];
  await Promise.all(Array.from({ length: P.createConcurrency === 'all' ? to - from : Math.min(P.createConcurrency, to - from) }, async () => {
    while (nextService < to) {
      const c0 = performance.now();
      await createService(via, svcName(nextService++));
      createMs.push(performance.now() - c0);
    }
  }));
  const createSeconds = (Date.now() - t0) / 1000;
  // One at a time (--create-concurrency 1), each create waits for its commit behind the tasks of
  // the services before it: these calls then set the pace of the step.
  createMs.sort((x, y) => x - y);
  const creates = { n: createMs.length, p50Ms: createMs[Math.floor(createMs.length / 2)] ?? 0, maxMs: createMs.at(-1) ?? 0, seconds: createSeconds };
  log(`  ${creates.n} create calls in ${createSeconds.toFixed(1)} s: p50 ${creates.p50Ms.toFixed(0)} ms, slowest ${creates.maxMs.toFixed(0)} ms`);
  let lastLog = 0;
  const done = await until(`${tasks} tasks assigned and RUNNING (acknowledged)`, async () => {
    const c = await counts();
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      const secs = (Date.now() - t0) / 1000;
      log(`  ${c.assigned - before.assigned}/${tasks} assigned, ${c.runningAcked}/${totalTasks} running (acked), ${c.connected}/${P.nodes} sessions, ${(Math.max(0, c.assigned - before.assigned) / secs).toFixed(0)} placements/s so far${topReasons(c)}`);
    }
    return c.assigned - before.assigned >= tasks && c.runningAcked >= totalTasks && c.unacked === 0 ? c : null;
  }, P.boundMs, 200);
  const convergeSeconds = (Date.now() - t0) / 1000;
  const cost = costBetween(costBefore, await costReading(all, via, agentProcs()));
  const placeSeconds = (done.lastAssignAt - t0) / 1000;
  log(`  converged in ${convergeSeconds.toFixed(1)} s (last placement seen at ${placeSeconds.toFixed(1)} s); checking through the API`);
  log(`  cost: CPU s ${JSON.stringify(cost.cpuSeconds)}; leader raft entries ${cost.raftEntries} (${(cost.raftEntries / tasks * 1000).toFixed(1)} per 1k tasks)`);
  const frames = { assignments: done.assignmentFrames - before.assignmentFrames, status: done.statusFrames - before.statusFrames };
  log(`  frames: ${frames.assignments} assignment frames (${(frames.assignments / tasks).toFixed(2)} per task), ${frames.status} status frames (${(frames.status / tasks).toFixed(2)} per task)`);
  const leaderChanges = (await term(all)) - termBefore;
  if (leaderChanges > 0) log(`  the leader changed ${leaderChanges} times during the step`);
  const leader = await until('a manager that leads', () => raftLeader(all), 60_000);
  // The agents' view, checked against the store's: every task of the step running with desired running.
  for (let i = from; i < to; i++) {
    const ts = await call<any[]>(leader, `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [svcName(i)], 'desired-state': ['running'] }))}`);
    const running = ts.filter((t) => t.Status.State === 'running').length;
    if (running !== P.replicas) throw new Error(`service ${svcName(i)}: ${running} of ${P.replicas} tasks running in GET /tasks after the agents converged`);
  }
  const managers = footprint(cluster!.daemons, leader);
  let pick = 0;
  const api = {
    services: await latency(leader, () => '/services', P.apiSamples),
    tasksFiltered: await latency(leader, () => `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [svcName(pick++ % to)], 'desired-state': ['running'] }))}`, P.apiSamples),
  };
  return { tasks, totalTasks, createSeconds, creates, placementsPerS: tasks / placeSeconds, placeSeconds, convergeSeconds, managers, assignmentsSeen: done.assigned - before.assigned, leaderChanges, leader: leader.name, api, cost, frames };
}

// ------------------------------------------------------------------ the run

/** The election timeout the run's managers use: [n, 2n) ticks (--election-tick, or shoal's default). */
function electionTimeout(): string {
  const n = P.electionTick ?? DEFAULT_ELECTION_TICKS;
  return `${((n * DEFAULT_TICK_MS) / 1000).toFixed(1)}–${((2 * n * DEFAULT_TICK_MS) / 1000).toFixed(1)} s`;
}

function leaderCpu(cost: StepCost): number {
  return Object.entries(cost.cpuSeconds).find(([name]) => name.endsWith('(leader)'))?.[1] ?? Number.NaN;
}

function stepFigures(s: StepResult): Figure[] {
  const at = `@${s.totalTasks} tasks`;
  const leaderFp = s.managers.find((m) => m.leader)!;
  const maxRss = Math.max(...s.managers.map((m) => m.rssBytes));
  const peakRss = Math.max(...s.managers.map((m) => m.peakRssBytes));
  return [
    report({ name: `placements/s ${at} (+${s.tasks})`, value: s.placementsPerS, unit: '/s', anchor: `Nomad C1M ${C1M}/s${s.assignmentsSeen > s.tasks ? `; ${s.assignmentsSeen - s.tasks} placed again` : ''}`, target: `≥ ${GOAL}/s`, met: s.placementsPerS >= GOAL }),
    report({ name: `leader changes during the step ${at}`, value: s.leaderChanges, unit: 'terms', target: '0', met: s.leaderChanges === 0 }),
    // What a task cost the leader's one thread, and the whole host, from the first create to convergence:
    // at the goal's rate the leader would have 1 s / GOAL per task, whatever else shares the host.
    report({ name: `leader CPU per task ${at}`, value: leaderCpu(s.cost) / s.tasks * 1000, unit: 'ms', anchor: `host ${(Object.values(s.cost.cpuSeconds).reduce((a, b) => a + b, 0) / s.tasks * 1000).toFixed(2)} ms over ${Object.keys(s.cost.cpuSeconds).length} processes; ${GOAL}/s leaves the leader ${(1000 / GOAL).toFixed(2)} ms` }),
    report({ name: `converge ${s.tasks} tasks ${at}`, value: s.convergeSeconds, unit: 's', anchor: `at ${C1M}/s: ${(s.tasks / C1M).toFixed(1)} s`, target: `at ${GOAL}/s: ${(s.tasks / GOAL).toFixed(1)} s`, met: s.convergeSeconds <= s.tasks / GOAL }),
    // The goal is set at 100k tasks: judged only there (or above).
    report({ name: `manager RSS, largest ${at}`, value: maxRss / MiB, unit: 'MiB', target: '< 1024 MiB at 100k', ...(s.totalTasks >= 100_000 ? { met: maxRss < 1024 * MiB } : {}) }),
    // VmRSS is read once the step converged, when the collector may just have run: the peak (VmHWM,
    // since the process started) says what the step itself took, garbage included.
    report({ name: `manager peak RSS (VmHWM), largest ${at}`, value: peakRss / MiB, unit: 'MiB', target: '< 1024 MiB at 100k', ...(s.totalTasks >= 100_000 ? { met: peakRss < 1024 * MiB } : {}) }),
    report({ name: `leader raft dir (WAL + snapshots) ${at}`, value: leaderFp.raftBytes / MiB, unit: 'MiB', anchor: `${(leaderFp.raftBytes / s.totalTasks).toFixed(0)} B/task` }),
    report({ name: `GET /services p50 ${at}`, value: s.api.services.p50, unit: 'ms', anchor: `p99 ${s.api.services.p99.toFixed(1)} ms, ${(s.api.services.bytes / 1024).toFixed(0)} KiB` }),
    report({ name: `GET /tasks?filters(service,running) p50 ${at}`, value: s.api.tasksFiltered.p50, unit: 'ms', anchor: `p99 ${s.api.tasksFiltered.p99.toFixed(1)} ms, ${(s.api.tasksFiltered.bytes / 1024).toFixed(0)} KiB` }),
  ];
}

// What was measured so far: written even when a later part fails (a run at the edge of what fits).
const figures: Figure[] = [];
const raw: { idle?: ManagerFootprint[]; settleCost?: StepCost; idleCost?: StepCost; joinLeaderChanges?: number; steps: StepResult[]; failover?: Failover; error?: string } = { steps: [] };

async function main(): Promise<void> {
  console.log(`control-plane scale: 3 managers (dist/shoal), ${P.nodes} real agents in ${P.agentProcs} processes (executors simulated), ${P.services} services × ${P.replicas} (${P.services * P.replicas} tasks), first step ${P.firstServices} services, created ${P.createConcurrency === 'all' ? 'all of a step at once' : `${P.createConcurrency} at a time`}, ${P.settleS} s to settle after the joins, heartbeat ${P.heartbeatS} s`);
  if (P.declineHeldAcks) console.log('NOTE --decline-held-acks: the agents do not let the dispatcher hold their acks; each status frame is answered by an ack frame of its own');
  if (P.declineNetTables) console.log('NOTE --decline-net-tables: the agents do not ask for the networks and endpoints tables (a real worker does); their per-join broadcast to every session is left out of these figures');
  const { managers, leader } = await boot();
  log(`managers up, leader ${leader.name}; joining ${P.nodes} agents`);
  const termBeforeJoins = await term(managers);
  const { joinSeconds } = await startAgents(managers, leader);
  const joinLeaderChanges = (await term(managers)) - termBeforeJoins;
  log(`${P.nodes} agents joined and in session in ${joinSeconds.toFixed(1)} s`);
  const idle = footprint(managers, leader);
  raw.idle = idle;
  raw.joinLeaderChanges = joinLeaderChanges;
  figures.push(
    report({ name: `agents joined + in session (${P.nodes})`, value: joinSeconds, unit: 's', anchor: `${(P.nodes / joinSeconds).toFixed(0)} joins/s` }),
    report({ name: 'leader changes while joining', value: joinLeaderChanges, unit: 'terms', target: '0', met: joinLeaderChanges === 0 }),
    report({ name: `manager RSS, largest, ${P.nodes} nodes, no tasks`, value: Math.max(...idle.map((m) => m.rssBytes)) / MiB, unit: 'MiB' }),
  );
  // The background the steps run on: heartbeats, gossip and the sessions' keep-alive, with no task moving.
  const agentProcs = pools.map((p) => ({ name: p.name, pid: p.proc.pid }));
  if (P.settleS > 0) {
    // The joins leave work behind (gossip streams opened one peer at a time, identify, peer store):
    // measured apart, so that neither the idle window nor the first step carries it.
    const settleFrom = await costReading(managers, leader, agentProcs);
    await Bun.sleep(P.settleS * 1000);
    raw.settleCost = costBetween(settleFrom, await costReading(managers, leader, agentProcs));
    log(`  the ${P.settleS} s after the joins: CPU s ${JSON.stringify(raw.settleCost.cpuSeconds)}`);
  }
  const idleFrom = await costReading(managers, leader, agentProcs);
  await Bun.sleep(IDLE_WINDOW_MS);
  raw.idleCost = costBetween(idleFrom, await costReading(managers, leader, agentProcs));
  log(`  idle for ${IDLE_WINDOW_MS / 1000} s: CPU s ${JSON.stringify(raw.idleCost.cpuSeconds)}; leader raft entries ${raw.idleCost.raftEntries}`);
  raw.steps.push(await step(managers, leader, 0, P.firstServices));
  figures.push(...stepFigures(raw.steps[0]!));
  if (P.services > P.firstServices) {
    raw.steps.push(await step(managers, leader, P.firstServices, P.services));
    figures.push(...stepFigures(raw.steps[1]!));
  }
  if (P.failover) {
    const now = await until('a manager that leads', () => raftLeader(managers), 60_000);
    const fo = await failover({ managers, leader: now, nodes: P.nodes, replicas: P.replicas, service: svcName(0), counts, log });
    raw.failover = fo;
    const at = `@${P.services * P.replicas} tasks`;
    figures.push(
      report({ name: `failover: election began ${at}`, value: fo.electionSeconds, unit: 's', anchor: `election timeout ${electionTimeout()}` }),
      report({ name: `failover: new leader ${at}`, value: fo.leaderSeconds, unit: 's', anchor: `slowest survivor /raft answer ${fo.slowestRaftAnswerMs.toFixed(0)} ms` }),
      report({ name: `failover: write accepted ${at}`, value: fo.writeSeconds, unit: 's', anchor: `new leader at ${fo.leaderSeconds.toFixed(2)} s` }),
      report({ name: `failover: all agents back in session`, value: fo.reconnectSeconds, unit: 's', anchor: `heartbeat ${P.heartbeatS} s; node down after 3 missed` }),
      report({ name: `failover: new task running`, value: fo.newTaskSeconds, unit: 's', anchor: `${fo.replaced} tasks re-placed, ${fo.nodesDown} nodes not ready` }),
    );
  }
}

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  console.error(`control-plane-scale failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  for (const d of cluster?.daemons ?? []) console.error(`--- ${d.name} (last lines)\n${d.output.trim().split('\n').slice(-15).join('\n')}`);
  raw.error = err instanceof Error ? err.message : String(err);
} finally {
  console.log(`  → ${writeResult(opt.out!, { params: P, completed: code === 0, figures, raw })}`);
  if (opt['keep-logs']) {
    mkdirSync(opt['keep-logs'], { recursive: true });
    for (const d of cluster?.daemons ?? []) writeFileSync(join(opt['keep-logs'], `${d.name}.log`), d.output);
    log(`the managers' output is in ${opt['keep-logs']}`);
  }
  log('stopping the agents and the managers');
  await Promise.all(pools.map((p) => p.stop().catch(() => p.killNow())));
  await cluster?.[Symbol.asyncDispose]().catch(() => {});
}
process.exit(code);
