/**
 * Store write throughput: committed single-object transactions per second, the store on the daemon's
 * one-voter raft log with its WAL on real disk (src/daemon/state.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../src/lib/ids.ts';
import { openClusterState } from '../src/daemon/state.ts';
import type { Service } from '../src/types/index.ts';
import { type Figure, fsyncRate, report, stats } from './lib.ts';

export async function run(): Promise<{ figures: Figure[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-store-'));
  const state = await openClusterState({ dataDir: dir, nodeId: 'bench' });
  const { store } = state;
  const svc = (i: number): Service => ({ ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: `s${i}`, TaskTemplate: { Runtime: 'mock' } } });
  try {
    // Concurrent writers (as the stages and API are): group commit folds them into few fsyncs.
    const total = 20_000;
    const concurrency = 256;
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const s = performance.now();
          await store.update((tx) => tx.create('services', svc(i)));
          latencies.push(performance.now() - s);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    // One writer at a time: every write waits for its own fsync.
    const serial = 300;
    const t1 = performance.now();
    for (let i = 0; i < serial; i++) await store.update((tx) => tx.create('services', svc(total + i)));
    const serialSecs = (performance.now() - t1) / 1000;
    const ceiling = fsyncRate(dir, 1000);
    const l = stats(latencies);
    console.log('store (one-voter raft log on disk, fsync per ready)');
    return {
      figures: [
        report({ name: 'store writes/s, 256 concurrent writers', value: Math.round(total / secs), unit: 'writes/s' }),
        report({ name: 'store write latency p50 (concurrent)', value: l.p50, unit: 'ms' }),
        report({ name: 'store write latency p99 (concurrent)', value: l.p99, unit: 'ms' }),
        report({ name: 'store writes/s, one writer at a time', value: Math.round(serial / serialSecs), unit: 'writes/s', anchor: 'one fsync per write' }),
        report({ name: 'fsync rate of this disk, same run', value: Math.round(ceiling), unit: 'fsync/s', anchor: 'the ceiling of one writer at a time' }),
      ],
    };
  } finally {
    state.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run();
