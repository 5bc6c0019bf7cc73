/**
 * Raft host benchmark: three voters in one process over InMemoryTransport, each with its real on-disk
 * WAL in a temp dir. Figures: committed 100-byte proposals/s (batched), commit latency p50/p99,
 * time from a leader crash to a new leader with default timings, and the machine's own fsync rate
 * in the same directory as the physical ceiling. The WAL is sealed with a data key, as the daemon
 * runs it (`run({ sealed: false })` for the clear-text log).
 * Run alone: node_modules/.bin/bun bench/raft.ts
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ELECTION_TICKS, DEFAULT_TICK_MS, RaftHost } from '../src/raft-host/host.ts';
import { InMemoryTransport } from '../src/raft-host/memory-transport.ts';
import { NotLeaderError, type StateMachine } from '../src/raft-host/proposer.ts';
import { type Figure, fsyncRate, report, stats } from './lib.ts';

class CountingMachine implements StateMachine {
  count = 0;
  apply(): unknown {
    return ++this.count;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.count));
  }
  restore(s: Uint8Array): void {
    this.count = Number(new TextDecoder().decode(s));
  }
}


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

function cluster(root: string, electionTicks: number, tickMs = DEFAULT_TICK_MS, sealed = true) {
  const ids = ['m1', 'm2', 'm3'];
  const hub = new InMemoryTransport();
  const nodes = new Map<string, Node>();
  const dataKeys = new Map(ids.map((id) => [id, randomBytes(32)]));
  const start = (id: string) => {
    const elected: number[] = [];
    const host = new RaftHost({
      id,
      dir: join(root, id),
      transport: hub.connect(id),
      // As the daemon runs it: WAL and snapshots sealed with a data key (encryption at rest).
      ...(sealed ? { dataKey: dataKeys.get(id) } : {}),
      stateMachine: new CountingMachine(),
      bootstrap: { voters: ids, learners: [] },
      electionTicks,
      tickMs,
      observer: { becameLeader: () => elected.push(performance.now()) },
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
  return { hub, nodes, start, leader, stopAll };
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

export async function run(opts: { proposals?: number; concurrency?: number; failovers?: number; sealed?: boolean } = {}) {
  const total = opts.proposals ?? 100_000;
  const concurrency = opts.concurrency ?? 4096;
  const failovers = opts.failovers ?? 7;
  const root = fs.mkdtempSync(join(tmpdir(), 'shoal-bench-raft-'));
  const ceiling = fsyncRate(root, 1000);
  const c = cluster(join(root, 'throughput'), 10, DEFAULT_TICK_MS, opts.sealed ?? true);
  try {
    const first = await waitFor(c.leader, 'the first leader', 10_000);

    // Throughput: `concurrency` proposers in flight; the host batches what arrives during a write.
    const payload = new Uint8Array(100).fill(7);
    const latencies: number[] = [];
    let issued = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (issued < total) {
          issued++;
          const s = performance.now();
          await first.host.propose(payload);
          latencies.push(performance.now() - s);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const commitsPerSec = total / secs;
    const lat = stats(latencies);

    c.stopAll();
    const failoverMs = await measureFailover(join(root, 'failover'), DEFAULT_ELECTION_TICKS, failovers);
    const failoverShortMs = await measureFailover(join(root, 'failover-old'), 7, failovers, 100);
    const fs7 = stats(failoverShortMs);
    const fo = stats(failoverMs);

    console.log(`raft (3 voters in one process, InMemoryTransport, on-disk WAL, default ${DEFAULT_TICK_MS} ms tick)`);
    const figures: Figure[] = [
      report({ name: 'fsync rate of this disk (physical ceiling)', value: Math.round(ceiling), unit: 'fsync/s', anchor: 'one fsync per commit caps at this' }),
      report({ name: 'committed 100-byte proposals/s (batched)', value: Math.round(commitsPerSec), unit: 'commits/s', target: '≥ 20000', met: commitsPerSec >= 20_000 }),
      report({ name: 'commit latency p50', value: lat.p50, unit: 'ms', anchor: `${concurrency} proposals in flight` }),
      report({ name: 'commit latency p99', value: lat.p99, unit: 'ms' }),
      report({ name: `leader crash → new leader, ${DEFAULT_ELECTION_TICKS} × ${DEFAULT_TICK_MS} ms ticks (median)`, value: fo.p50, unit: 'ms', target: '< 1500 (Swarm ~10 s)', met: fo.p50 < 1500 }),
      report({ name: `leader crash → new leader, ${DEFAULT_ELECTION_TICKS} × ${DEFAULT_TICK_MS} ms ticks (max)`, value: fo.max ?? NaN, unit: 'ms', target: '< 1500', met: (fo.max ?? Infinity) < 1500 }),
      report({ name: '  same, 7 × 100 ms ticks (median)', value: fs7.p50, unit: 'ms', anchor: 'the previous default' }),
      report({ name: '  same, 7 × 100 ms ticks (max)', value: fs7.max ?? NaN, unit: 'ms' }),
    ];
    return {
      figures,
      params: { proposals: total, concurrency, payloadBytes: 100, voters: 3, tickMs: DEFAULT_TICK_MS, electionTicks: DEFAULT_ELECTION_TICKS, failovers },
      throughput: { commitsPerSec, seconds: secs, latencyMs: lat },
      failoverMs,
      failoverElectionTicks10Ms: failoverShortMs,
      fsyncPerSec: ceiling,
    };
  } finally {
    c.stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const r = await run();
  console.log(JSON.stringify({ throughput: r.throughput, failoverMs: r.failoverMs, fsyncPerSec: r.fsyncPerSec }));
}
