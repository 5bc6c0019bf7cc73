/**
 * The one-host daemon, as a user runs it (dist/shoal): start → API ready; 50 replicas of a sleeping
 * process → all running; idle RSS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, killTaskProcesses, requireBinary } from '../test/harness/index.ts';
import { type Figure, report, rssOf, stats } from './lib.ts';

async function startToReady(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-d-'));
  const d = new Daemon(dir);
  try {
    const t0 = performance.now();
    d.proc = Bun.spawn([join(import.meta.dir, '../dist/shoal'), 'daemon', '--data-dir', dir, '--init'], { stdout: 'ignore', stderr: 'ignore' });
    for (let i = 0; i < 20_000; i++) {
      const ok = await d.api('/_ping').then((r) => r.ok, () => false);
      if (ok) return performance.now() - t0;
      await Bun.sleep(1);
    }
    throw new Error('daemon API never became ready');
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<{ figures: Figure[] }> {
  requireBinary();
  console.log('daemon (dist/shoal, one host)');
  const figures: Figure[] = [];
  const starts: number[] = [];
  for (let i = 0; i < 5; i++) starts.push(await startToReady());
  const s = stats(starts);
  figures.push(report({ name: 'daemon start → API ready (p50 of 5)', value: s.p50, unit: 'ms', target: '< 300 ms', met: s.p50 < 300 }));

  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-d-'));
  const d = new Daemon(dir);
  try {
    await d.start();
    await Bun.sleep(500); // let start-up settle before reading idle RSS
    const idle = rssOf(d.proc!.pid);
    figures.push(report({ name: 'idle daemon RSS', value: idle / 2 ** 20, unit: 'MiB', target: '< 80 MB', met: idle < 80e6 }));

    const t0 = performance.now();
    const res = await d.json<{ ID: string }>('/services/create', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ Name: 'sleepers', Mode: { Replicated: { Replicas: 50 } }, TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sleep', '3600'] } } }),
    });
    let running = 0;
    for (let i = 0; i < 30_000 && running < 50; i++) {
      running = (await d.running(res.ID)).length;
      if (running < 50) await Bun.sleep(5);
    }
    const convergeMs = performance.now() - t0;
    figures.push(report({ name: 'create --replicas 50 → all running', value: convergeMs, unit: 'ms', target: '< 2 s', met: running === 50 && convergeMs < 2000 }));
    const busy = rssOf(d.proc!.pid);
    figures.push(report({ name: 'daemon RSS growth per running task', value: (busy - idle) / 50 / 1024, unit: 'KiB/task' }));
  } finally {
    await d.stop();
    killTaskProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return { figures };
}

if (import.meta.main) await run();
