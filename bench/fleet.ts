/**
 * Failure handling of a fleet on loopback (dist/shoal, 3 managers + 2 workers, default settings):
 * kill -9 of the raft leader → first write accepted by a survivor; kill -9 of a worker → its
 * replicas running elsewhere. One run each per round; several rounds.
 */
import { Cluster, type Daemon, requireBinary } from '../test/harness/index.ts';
import { type Figure, report, stats } from './lib.ts';

async function until<T>(check: () => Promise<T | null | false>, boundMs: number): Promise<T> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (performance.now() > deadline) throw new Error('bound exceeded');
    await Bun.sleep(5);
  }
}

const create = (d: Daemon, name: string) =>
  d.api('/services/create', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ Name: name, Mode: { Replicated: { Replicas: 0 } }, TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sleep', '1'] } } }),
  }).then((r) => r.status === 201);

async function round(i: number): Promise<{ leaderMs: number; workerMs: number }> {
  await using cluster = Cluster.loopback();
  const { managers, workers, ids } = await cluster.boot({ managers: 3, workers: 2 });
  const [m1] = managers as [Daemon];
  const [w1] = workers as [Daemon];
  await m1.ok('service', 'create', '--detach', '--name', 'web', '--replicas', '6', '--', '/bin/sleep', '3600');
  await until(async () => (await m1.running('web')).length === 6, 30_000);

  const leaderId = await until(async () => (await m1.json<any[]>('/nodes')).find((n) => n.ManagerStatus?.Leader)?.ID, 10_000);
  const leader = managers.find((m) => ids.get(m) === leaderId)!;
  const survivor = managers.find((m) => m !== leader)!;
  let t0 = performance.now();
  const killedAt = Date.now();
  const logFrom = new Map(managers.map((m) => [m, m.output.length]));
  await leader.kill9();
  let n = 0;
  let lastStatus = '';
  const attempts: string[] = [];
  await until(async () => {
    const a0 = performance.now();
    const ok = await create(survivor, `after-${i}-${n++}`).catch(() => false);
    attempts.push(`${(a0 - t0).toFixed(0)}+${(performance.now() - a0).toFixed(0)}${ok ? '✓' : '✗'}`);
    if (!ok) lastStatus = await survivor.api('/nodes').then((r) => r.text()).catch((e) => String(e));
    return ok;
  }, 60_000).catch((err) => {
    const others = managers.filter((m) => m !== leader);
    throw new Error(`${err.message}: no write accepted after the leader was killed; last /nodes: ${lastStatus.slice(0, 600)}\n--- survivor logs ---\n${others.map((m) => m.output.slice(-2500)).join('\n---\n')}`);
  });
  const leaderMs = performance.now() - t0;
  // Where the time went: each write attempt as start+duration (ms after the kill), the last ones.
  const trail = attempts.length > 6 ? [attempts[0], '…', ...attempts.slice(-4)] : attempts;
  // And when a survivor took the lead (its log line's time, ms after the kill).
  const elected = managers.filter((m) => m !== leader).flatMap((m) => m.output.slice(logFrom.get(m)).split('\n')
    .filter((l) => /this node leads/.test(l)).map((l) => `${Date.parse(l.slice(0, 24)) - killedAt} ms, ${/term \d+/.exec(l)?.[0]}`));
  const oldTerm = [...leader.output.matchAll(/this node leads \((term \d+)\)/g)].pop()?.[1];

  const onW1 = (await survivor.running('web')).filter((t) => t.NodeID === ids.get(w1)).length;
  t0 = performance.now();
  await w1.kill9();
  await until(async () => {
    const r = await survivor.running('web');
    return r.length === 6 && r.every((t) => t.NodeID !== ids.get(w1) && t.NodeID !== leaderId);
  }, 60_000);
  const workerMs = performance.now() - t0;
  console.log(`  round ${i}: leader kill → write ${leaderMs.toFixed(0)} ms (${attempts.length} attempts: ${trail.join(' ')}; new leader at ${elected.join(', ') || '?'} after ${oldTerm ?? '?'}); worker kill (${onW1} replicas on it) → 6 running elsewhere ${workerMs.toFixed(0)} ms`);
  return { leaderMs, workerMs };
}

export async function run(): Promise<{ figures: Figure[] }> {
  requireBinary();
  console.log('fleet (dist/shoal, 3 managers + 2 workers on loopback, default settings)');
  const rounds = [];
  const n = Math.max(1, Number(process.env.FLEET_BENCH_ROUNDS) || 3);
  for (let i = 0; i < n; i++) rounds.push(await round(i));
  const l = stats(rounds.map((r) => r.leaderMs));
  const w = stats(rounds.map((r) => r.workerMs));
  return {
    figures: [
      report({ name: `kill -9 leader → first accepted write (p50 of ${rounds.length})`, value: l.p50, unit: 'ms', target: '< 2 s', anchor: 'Swarm ~10 s election', met: l.p50 < 2000 }),
      report({ name: `kill -9 worker → replicas running elsewhere (p50 of ${rounds.length})`, value: w.p50, unit: 'ms', target: '< 5 s', anchor: 'Swarm ~15 s node down', met: w.p50 < 5000 }),
    ],
  };
}
