/**
 * Why the mesh balances by least-connections rather than plain round-robin: a seeded discrete-event
 * simulation that drives the real BackendTable (src/mesh/backends.ts). Three backends, each serving its
 * connections one at a time (FIFO); all equal, then one 4× slower (a busy host, a cold cache).
 * Connections arrive at random at 70 % of the total capacity. Reported: mean and p99 time a connection
 * spends in the system under each policy. Round-robin is modelled by the same table with load counts never taken.
 */
import { BackendLoad, BackendTable, type Backend } from '../src/mesh/backends.ts';
import { type Figure, percentile, report } from './lib.ts';
import { seededRandom as rng } from '../src/lib/rng.ts';


interface Server {
  rate: number;
  /** Finish times of the connections queued here, in order. */
  queue: number[];
}

function simulate(leastConnections: boolean, slowRate: number, seed: number, n = 50_000): number[] {
  const rand = rng(seed);
  const exp = (rate: number) => -Math.log(rand()) / rate;
  const backends: Backend[] = [1, 2, 3].map((port) => ({ addr: '10.0.0.1', port, local: true, healthy: true }));
  const servers = new Map<string, Server>([
    ['10.0.0.1:1', { rate: 1, queue: [] }],
    ['10.0.0.1:2', { rate: 1, queue: [] }],
    ['10.0.0.1:3', { rate: slowRate, queue: [] }],
  ]);
  const load = new BackendLoad(0, () => 0);
  const table = new BackendTable(load);
  table.replace(backends);
  const arrivalRate = 0.7 * (2 + slowRate);
  const times: number[] = [];
  let now = 0;
  for (let i = 0; i < n; i++) {
    now += exp(arrivalRate);
    // Connections finished by now leave (and release their count).
    for (const [key, s] of servers)
      while (s.queue.length && s.queue[0]! <= now) {
        s.queue.shift();
        if (leastConnections) load.release(key);
      }
    const b = table.pick()!;
    const s = servers.get(b.key)!;
    const start = s.queue.length ? s.queue[s.queue.length - 1]! : now;
    const done = start + exp(s.rate);
    s.queue.push(done);
    if (leastConnections) load.acquire(b.key);
    times.push(done - now);
  }
  return times.sort((a, b) => a - b);
}

export function run(): Figure[] {
  console.log('  balancing policy (simulation over the real BackendTable, load 70 %; times in mean service times of a fast backend)');
  const out: Figure[] = [];
  for (const [scenario, slowRate] of [
    ['equal backends', 1],
    ['one backend 4x slower', 0.25],
  ] as const)
    for (const [policy, lc] of [
      ['round-robin', false],
      ['least-connections', true],
    ] as const) {
      const t = simulate(lc, slowRate, 42);
      const mean = t.reduce((a, b) => a + b, 0) / t.length;
      out.push(report({ name: `${scenario}, ${policy}: mean / p99`, value: mean, unit: `/ ${percentile(t, 99).toFixed(1)}` }));
    }
  return out;
}

if (import.meta.main) run();
