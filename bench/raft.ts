/**
 * Raft host benchmark: three voters in one process over InMemoryTransport, each with its real on-disk
 * WAL in a temp dir. Figures: committed 100-byte proposals/s with 4 096 in flight (closed loop) and
 * their commit latency; commit latency at a fixed offered rate (open loop: proposals go out by a
 * schedule and latency counts from the scheduled time, so a stall shows in full instead of holding
 * back the proposals behind it); each persist technique turned off alone (group commit, pipelined
 * appends, the leader's appends leaving before its own fsync) and the old host loop (fsync on the
 * event loop, send after persist), measured in the same run; time from a leader crash to a new
 * leader with default timings; and the machine's own fsync rate in the same directory as the
 * physical ceiling. The WAL is sealed with a data key, as the daemon runs it (`run({ sealed: false })`
 * for the clear-text log).
 * Run alone: node_modules/.bin/bun bench/raft.ts
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ELECTION_TICKS, DEFAULT_TICK_MS, RaftHost, type RaftHostOptions } from '../src/raft-host/host.ts';
import { InMemoryTransport } from '../src/raft-host/memory-transport.ts';
import { CountingMachine, FsyncHookDisk } from '../src/raft-host/testkit.ts';
import { NotLeaderError } from '../src/raft-host/proposer.ts';
import { type Figure, fsyncRate, report, stats } from './lib.ts';

async function waitFor<T>(get: () => T | undefined | null | false, what: string, boundMs: number): Promise<T> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    const v = get();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${boundMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

interface Node {
  id: string;
  host: RaftHost;
  elected: number[];
}

/** The real disk, timing each background fdatasync: the tail of commit latency next to the disk's own. */
class TimedDisk extends FsyncHookDisk {
  fsyncMs: number[] = [];
  protected override aroundFsync(sync: (done: (err: Error | null) => void) => void, done: (err: Error | null) => void): void {
    const t0 = performance.now();
    sync((err) => {
      this.fsyncMs.push(performance.now() - t0);
      done(err);
    });
  }
}

/** Host options that switch a persist technique off (the ablations). */
type Variant = Pick<RaftHostOptions, 'pipeline' | 'groupCommit' | 'parallelLeaderAppend' | 'raft'>;

function cluster(root: string, electionTicks: number, tickMs = DEFAULT_TICK_MS, sealed = true, variant: Variant = {}) {
  const ids = ['m1', 'm2', 'm3'];
  const hub = new InMemoryTransport();
  const nodes = new Map<string, Node>();
  const dataKeys = new Map(ids.map((id) => [id, randomBytes(32)]));
  const disk = new TimedDisk();
  const start = (id: string) => {
    const elected: number[] = [];
    const host = new RaftHost({
      id,
      dir: join(root, id),
      disk,
      transport: hub.connect(id),
      // As the daemon runs it: WAL and snapshots sealed with a data key (encryption at rest).
      ...(sealed ? { dataKey: dataKeys.get(id) } : {}),
      stateMachine: new CountingMachine(),
      bootstrap: { voters: ids, learners: [] },
      electionTicks,
      tickMs,
      observer: { becameLeader: () => elected.push(performance.now()) },
      ...variant,
    });
    host.start();
    hub.heal(id);
    nodes.set(id, { id, host, elected });
  };
  const leader = () => [...nodes.values()].find((n) => n.host.status.running && n.host.status.role === 'leader');
  for (const id of ids) start(id);
  const stopAll = () => {
    for (const n of nodes.values()) n.host.stop();
  };
  return { hub, nodes, start, leader, stopAll, disk };
}

/** Stops the leader (a crash, as far as the others can tell) `rounds` times; ms until another leads. */
async function measureFailover(root: string, electionTicks: number, rounds: number, tickMs = DEFAULT_TICK_MS): Promise<number[]> {
  const { hub, nodes, start, leader, stopAll } = cluster(root, electionTicks, tickMs);
  try {
    const failoverMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const old = await waitFor(leader, 'a leader before the crash', 10_000);
      // Let a few heartbeats pass so the followers' election clocks restart from a fresh one.
      await new Promise((r) => setTimeout(r, 300));
      const before = new Map([...nodes.values()].map((n) => [n.id, n.elected.length]));
      const crashedAt = performance.now();
      hub.isolate(old.id);
      old.host.stop();
      const next = await waitFor(
        () => [...nodes.values()].find((n) => n.id !== old.id && n.elected.length > before.get(n.id)!),
        'a new leader after the crash',
        15_000,
      );
      failoverMs.push(next.elected[next.elected.length - 1]! - crashedAt);
      start(old.id); // back as a follower for the next round
      await waitFor(() => nodes.get(old.id)!.host.status.leader, 'the restarted node to see a leader', 10_000);
    }
    return failoverMs;
  } finally {
    stopAll();
  }
}

const PAYLOAD = new Uint8Array(100).fill(7);

/**
 * `total` proposals, `concurrency` in flight: each proposer issues its next as its last commits.
 * `latencyMs` counts the proposals issued after the opening burst (the first `concurrency`, all
 * issued in the same instant, which queue behind each other as no steady state does): the latency
 * at that many in flight. `latencyAllMs` counts every proposal, the burst's included.
 */
async function closedLoop(host: RaftHost, total: number, concurrency: number) {
  const latencies: number[] = [];
  const steady: number[] = [];
  let issued = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < total) {
        const burst = issued++ < concurrency;
        const s = performance.now();
        await host.propose(PAYLOAD);
        const ms = performance.now() - s;
        latencies.push(ms);
        if (!burst) steady.push(ms);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // CPU of the whole process (three nodes and the proposers) per commit: the lever behind throughput.
  const cpuUsPerCommit = (cpu.user + cpu.system) / total;
  return { commitsPerSec: total / seconds, seconds, cpuUsPerCommit, latencyMs: stats(steady.length ? steady : latencies), latencyAllMs: stats(latencies) };
}

/**
 * Proposals at `perSec` by a schedule for `seconds`, whatever the earlier ones do (open loop); each
 * latency runs from its scheduled time, so a late timer or a stalled loop is counted, not hidden.
 */
async function openLoop(host: RaftHost, perSec: number, seconds: number) {
  const n = Math.round(perSec * seconds);
  const gapMs = 1000 / perSec;
  const latencies: number[] = [];
  const t0 = performance.now() + 5;
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    const fire = () => {
      const now = performance.now();
      while (next < n && t0 + next * gapMs <= now) {
        const scheduled = t0 + next * gapMs;
        next++;
        host.propose(PAYLOAD).then(() => {
          latencies.push(performance.now() - scheduled);
          if (latencies.length === n) resolve();
        }, reject);
      }
      if (next < n) setTimeout(fire, Math.max(0, t0 + next * gapMs - performance.now()));
    };
    fire();
  });
  return { offeredPerSec: perSec, seconds, latencyMs: stats(latencies) };
}

/** A fresh three-voter cluster with `variant`: open loop at `perSec`, then `total` closed-loop proposals. */
export async function measure(root: string, variant: Variant, o: { sealed: boolean; total: number; concurrency: number; perSec: number; openSeconds: number }) {
  const c = cluster(root, 10, DEFAULT_TICK_MS, o.sealed, variant);
  try {
    const l = await waitFor(c.leader, 'a leader', 10_000);
    // Warm up (the engine compiles the hot paths, the followers settle into replicate state) before
    // any clock starts: the first cluster of the run would otherwise pay for it in its tail alone.
    await closedLoop(l.host, 10_000, 256);
    c.disk.fsyncMs = [];
    const open = await openLoop(l.host, o.perSec, o.openSeconds);
    const openFsyncMs = stats(c.disk.fsyncMs);
    const fsyncsBefore = l.host.groupFsyncs;
    const closed = await closedLoop(l.host, o.total, o.concurrency);
    const leaderFsyncs = l.host.groupFsyncs - fsyncsBefore;
    return { open, openFsyncMs, closed, commitsPerLeaderFsync: leaderFsyncs ? o.total / leaderFsyncs : null };
  } finally {
    c.stopAll();
  }
}

export async function run(opts: { proposals?: number; concurrency?: number; failovers?: number; sealed?: boolean; openPerSec?: number; openSeconds?: number; ablationProposals?: number } = {}) {
  // ~2 s of proposals: long enough for a steady state past the opening burst and the engine's warm-up.
  const total = opts.proposals ?? 400_000;
  const concurrency = opts.concurrency ?? 4096;
  const failovers = opts.failovers ?? 7;
  const sealed = opts.sealed ?? true;
  const perSec = opts.openPerSec ?? 1000;
  const openSeconds = opts.openSeconds ?? 5;
  const ablationTotal = opts.ablationProposals ?? 20_000;
  const root = fs.mkdtempSync(join(tmpdir(), 'shoal-bench-raft-'));
  const ceiling = fsyncRate(root, 1000);
  try {
    const full = await measure(join(root, 'full'), {}, { sealed, total, concurrency, perSec, openSeconds });
    // Each technique off alone, same load; without group commit a commit costs an fdatasync on each
    // node, so that one gets fewer proposals and a shorter open loop to finish in reasonable time.
    const variants: { name: string; what: string; variant: Variant; proposals: number; openSeconds: number }[] = [
      { name: 'no group commit', what: 'one fdatasync per entry', variant: { groupCommit: false }, proposals: Math.min(ablationTotal, 2_000), openSeconds: 1 },
      { name: 'no pipelined appends', what: 'one append in flight per follower', variant: { raft: { maxInflightMsgs: 1 } }, proposals: ablationTotal, openSeconds: Math.min(openSeconds, 3) },
      { name: 'leader fsync before its appends', what: "appends wait for the leader's own fsync", variant: { parallelLeaderAppend: false }, proposals: ablationTotal, openSeconds: Math.min(openSeconds, 3) },
      { name: 'old loop', what: 'fsync on the event loop, send after persist, per ready', variant: { pipeline: false }, proposals: ablationTotal, openSeconds: Math.min(openSeconds, 3) },
    ];
    const ablations: { name: string; what: string; proposals: number; openSeconds: number; result: Awaited<ReturnType<typeof measure>> }[] = [];
    for (const v of variants) {
      const result = await measure(join(root, v.name.replace(/\W+/g, '-')), v.variant, { sealed, total: v.proposals, concurrency, perSec, openSeconds: v.openSeconds });
      ablations.push({ name: v.name, what: v.what, proposals: v.proposals, openSeconds: v.openSeconds, result });
    }

    const failoverMs = await measureFailover(join(root, 'failover'), DEFAULT_ELECTION_TICKS, failovers);
    const failoverShortMs = await measureFailover(join(root, 'failover-old'), 7, failovers, 100);
    const fs7 = stats(failoverShortMs);
    const fo = stats(failoverMs);

    const { closed, open } = full;
    console.log(`raft (3 voters in one process, InMemoryTransport, on-disk WAL, default ${DEFAULT_TICK_MS} ms tick)`);
    const figures: Figure[] = [
      report({ name: 'fsync rate of this disk (physical ceiling)', value: Math.round(ceiling), unit: 'fsync/s', anchor: 'one fsync per commit caps at this' }),
      report({ name: 'committed 100-byte proposals/s (batched)', value: Math.round(closed.commitsPerSec), unit: 'commits/s', target: '≥ 30000', met: closed.commitsPerSec >= 30_000 }),
      report({ name: `commit latency p50, ${concurrency} in flight`, value: closed.latencyMs.p50, unit: 'ms', anchor: `Little: ${concurrency} / throughput` }),
      report({ name: `commit latency p99, ${concurrency} in flight`, value: closed.latencyMs.p99, unit: 'ms', target: '< 50', met: closed.latencyMs.p99 < 50 }),
      report({ name: `  p99 with the opening burst of ${concurrency} counted`, value: closed.latencyAllMs.p99, unit: 'ms', anchor: `max ${(closed.latencyAllMs.max ?? NaN).toFixed(1)} ms; ${total} proposals in ${closed.seconds.toFixed(2)} s` }),
      report({ name: `commit latency p50, ${perSec}/s offered (open loop)`, value: open.latencyMs.p50, unit: 'ms', anchor: 'from the scheduled time' }),
      report({ name: `commit latency p99, ${perSec}/s offered (open loop)`, value: open.latencyMs.p99, unit: 'ms', target: '< 10', met: open.latencyMs.p99 < 10 }),
      report({ name: `commit latency max, ${perSec}/s offered (open loop)`, value: open.latencyMs.max ?? NaN, unit: 'ms' }),
      report({ name: '  fdatasync p50 meanwhile (3 WALs, one disk)', value: full.openFsyncMs.p50, unit: 'ms', anchor: 'a commit waits for ~2 of them' }),
      report({ name: '  fdatasync p99 meanwhile', value: full.openFsyncMs.p99, unit: 'ms', anchor: `max ${(full.openFsyncMs.max ?? NaN).toFixed(1)} ms` }),
      report({ name: 'CPU per commit (3 nodes + proposers, one process)', value: closed.cpuUsPerCommit, unit: 'µs', anchor: `${Math.round(1e6 / closed.cpuUsPerCommit)} commits per CPU-second` }),
      report({ name: 'commits per leader fsync (group commit)', value: full.commitsPerLeaderFsync ?? NaN, unit: 'commits', anchor: `${concurrency} in flight` }),
    ];
    for (const a of ablations) {
      const r = a.result;
      figures.push(
        report({ name: `  ${a.name}: commits/s`, value: Math.round(r.closed.commitsPerSec), unit: 'commits/s', anchor: `${a.what}; all on: ${Math.round(closed.commitsPerSec)}` }),
        report({ name: `  ${a.name}: p99, ${concurrency} in flight`, value: r.closed.latencyMs.p99, unit: 'ms', anchor: `all on: ${closed.latencyMs.p99.toFixed(1)}` }),
        report({ name: `  ${a.name}: p99, ${perSec}/s offered`, value: r.open.latencyMs.p99, unit: 'ms', anchor: `all on: ${open.latencyMs.p99.toFixed(1)}` }),
      );
    }
    figures.push(
      report({ name: `leader crash → new leader, ${DEFAULT_ELECTION_TICKS} × ${DEFAULT_TICK_MS} ms ticks (median)`, value: fo.p50, unit: 'ms', target: '< 1500 (Swarm ~10 s)', met: fo.p50 < 1500 }),
      report({ name: `leader crash → new leader, ${DEFAULT_ELECTION_TICKS} × ${DEFAULT_TICK_MS} ms ticks (max)`, value: fo.max ?? NaN, unit: 'ms', target: '< 1500', met: (fo.max ?? Infinity) < 1500 }),
      report({ name: '  same, 7 × 100 ms ticks (median)', value: fs7.p50, unit: 'ms', anchor: 'the previous default' }),
      report({ name: '  same, 7 × 100 ms ticks (max)', value: fs7.max ?? NaN, unit: 'ms' }),
    );
    return {
      figures,
      params: { proposals: total, concurrency, openPerSec: perSec, openSeconds, ablationProposals: ablationTotal, payloadBytes: 100, voters: 3, tickMs: DEFAULT_TICK_MS, electionTicks: DEFAULT_ELECTION_TICKS, failovers, sealed },
      throughput: closed,
      openLoop: open,
      commitsPerLeaderFsync: full.commitsPerLeaderFsync,
      ablations,
      failoverMs,
      failoverElectionTicks10Ms: failoverShortMs,
      fsyncPerSec: ceiling,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const r = await run();
  console.log(JSON.stringify({ throughput: r.throughput, openLoop: r.openLoop, failoverMs: r.failoverMs, fsyncPerSec: r.fsyncPerSec }));
}
