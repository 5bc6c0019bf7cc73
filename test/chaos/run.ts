/**
 * One chaos run: 5 managers and 3 workers as namespace hosts, a seeded workload of reads and CAS
 * writes on a few services, the seed's faults one after another, then everything healed and three
 * checks: the history is linearizable, no acknowledged write is lost, and the replicated service is
 * back at its desired replicas. The report (report.ts) says what happened; a failure names the seed
 * and the command that replays it. docs/chaos.md describes the suite.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Daemon, waitFor } from '../harness/index.ts';
import { DiskFull, type FaultRecord, Injector } from './inject.ts';
import { type CasOp, casPending, casRegister, checkHistory, formatCasOp, narrowViolation, sawVersionBumps, type Verdict } from './linearizability.ts';
import { faultSchedule } from './schedule.ts';
import { LABEL, type RegisterKey, Workload } from './workload.ts';

export interface ChaosOptions {
  seed: number;
  /** How long faults keep coming, ms. */
  durationMs: number;
  clients?: number;
  keys?: number;
  /** Replicas of the process service whose restoration is checked. */
  replicas?: number;
  /** Bound for everything after the final heal (default 150 s): the cluster back, final reads, replicas. */
  recoveryMs?: number;
  /** Progress lines (boot, each fault) as they happen. */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  durationMs: number;
  bootMs: number;
  totalMs: number;
  ops: CasOp[];
  faults: FaultRecord[];
  /** Fault kinds or checks not done here, each with the reason. */
  skipped: string[];
  linearizable: { verdict: Verdict; versionBumps: boolean; perKey: { key: string; verdict: Verdict; ops: number; steps: number }[] };
  anomalies: string[];
  notes: string[];
  /** Where every daemon's whole log was written, when there were anomalies. */
  logsDir?: string;
  /** ms from the final heal until every check's condition held. */
  recoveryMs?: number;
}

export const CLOCK_SKIP = 'clock jumps: skipped: the wall clock is not per network namespace (a time namespace offsets only the monotonic and boot clocks, and only before its first process), and setting the host clock would move every other process on this machine; the pause fault (SIGSTOP/SIGCONT) stands in for a host whose time stalls and jumps';

export function replayCommand(seed: number, durationMs: number): string {
  return `npm run chaos -- --minutes ${+(durationMs / 60_000).toFixed(2)} --seed ${seed}`;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const since = () => performance.now() - t0;
  const report: ChaosReport = {
    seed: opts.seed, durationMs: opts.durationMs, bootMs: 0, totalMs: 0, ops: [], faults: [], skipped: [CLOCK_SKIP],
    linearizable: { verdict: 'unknown', versionBumps: false, perKey: [] }, anomalies: [], notes: [],
  };
  let booted: Awaited<ReturnType<typeof bootCluster>> | undefined;
  for (let attempt = 1; !booted; attempt++) {
    log(`seed ${opts.seed}: booting 5 managers and 3 workers in network namespaces${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    try {
      booted = await bootCluster(report);
    } catch (e) {
      // A join that times out on a loaded machine is the machine's, not the cluster's: once more, from scratch.
      if (attempt >= 2) throw e;
      report.notes.push(`boot attempt ${attempt} failed and was retried: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const { cluster, disk, managers, workers, ids } = booted;
  let workload: Workload | undefined;
  try {
    report.bootMs = Math.round(since());
    const m1 = managers[0]!;
    const keys: RegisterKey[] = [];
    for (let i = 0; i < (opts.keys ?? 3); i++) {
      const name = `chaos-k${i}`;
      await m1.ok('service', 'create', '--detach', '--name', name, '--replicas', '0', '--', '/bin/sleep', '1');
      keys.push({ name, id: (await m1.json<any>(`/services/${name}`)).ID });
    }
    const replicas = opts.replicas ?? 3;
    await m1.ok('service', 'create', '--detach', '--name', 'chaos-sleep', '--replicas', String(replicas), '--constraint', 'node.role==worker', '--', '/bin/sleep', '3600');
    await waitFor(`${replicas} running tasks of chaos-sleep before the faults`, async () => (await m1.running('chaos-sleep')).length === replicas, 60_000);
    log(`booted in ${(report.bootMs / 1000).toFixed(1)} s; workload and faults for ${(opts.durationMs / 1000).toFixed(0)} s`);

    const tw = performance.now();
    const injector = new Injector({ net: cluster.net!, managers, workers, ids, disk: disk.mounted ? { daemon: managers[4]!, fs: disk } : undefined }, () => performance.now() - tw);
    workload = new Workload({ seed: opts.seed, clients: opts.clients ?? 3, managers, keys, now: () => performance.now() - tw });
    workload.start();
    for (const f of faultSchedule({ seed: opts.seed, durationMs: opts.durationMs, without: disk.mounted ? [] : ['disk-full'] })) {
      // Slow heals push the schedule back; the run's length stays bounded (the faults left out are reported).
      if (performance.now() - tw > opts.durationMs + 5_000) {
        report.notes.push(`the schedule ran late: ${f.kind} at ${(f.at / 1000).toFixed(1)} s and the faults after it were not injected`);
        break;
      }
      const wait = f.at - (performance.now() - tw);
      if (wait > 0) await Bun.sleep(wait); // the schedule's own rhythm, not a wait for a condition
      const heal = await injector.inject(f);
      const rec = injector.records.at(-1)!;
      log(`  ${(rec.at / 1000).toFixed(1)} s  ${f.kind}  ${rec.targets.join('  ')}`);
      await Bun.sleep(f.holdMs);
      await heal();
      if (rec.note) log(`           ${rec.note}`);
    }

    // Heal everything, then the cluster must come back by itself.
    const healedAt = performance.now();
    // One budget for everything after the heal, so that a stuck cluster fails the run in bounded time.
    const recoveryEnd = healedAt + (opts.recoveryMs ?? 150_000);
    const left = (atMost: number) => Math.max(2_000, Math.min(atMost, recoveryEnd - performance.now()));
    report.notes.push(...(await injector.healAll()));
    report.faults = injector.records;
    const okWritesBefore = workload.ops.filter((o) => o.input.f === 'cas' && o.output === 'ok').length;
    try {
      await agreedLeader([...managers, ...workers], left(60_000));
      await cluster.waitReady(8, 5, left(90_000));
      await waitFor('a write acknowledged after the heal (the cluster is not stuck)', () => workload!.ops.filter((o) => o.input.f === 'cas' && o.output === 'ok').length > okWritesBefore, left(60_000));
    } catch (e) {
      report.anomalies.push(`stuck after healing: ${(e as Error).message}; the managers' raft views: ${await raftViews(managers)}`);
    }
    await workload.stop();

    // Final reads on every manager: part of the history (a lost write shows there), and the last word.
    // A node the manager count demoted meanwhile (a manager lost past its grace period is replaced,
    // and the surplus demoted once it is back: src/daemon/manager-count.ts) is a worker now.
    const finalManagers = await stillManagers(managers, workers, report);
    const finals = new Map<string, Set<string>>();
    for (const k of keys) {
      finals.set(k.name, new Set());
      await Promise.all(finalManagers.map(async (m, i) => {
        const got = await workload!.read(1000 + i, k, m, left(15_000));
        if (got) finals.get(k.name)!.add(got.value);
        else report.anomalies.push(`final read of ${k.name} on ${m.name} did not answer`);
      }));
    }
    const ops = (report.ops = workload.ops);
    checkLinearizable(report, ops);
    checkNoLostWrites(report, ops, finals);
    // A cluster found stuck above will not place tasks either: a shorter bound then, to stay within CI's time.
    await checkReplicas(report, finalManagers, replicas, left(90_000));
    report.recoveryMs = Math.round(performance.now() - healedAt);
    if (report.anomalies.length) report.logsDir = keepLogs(cluster.daemons, opts.seed);
  } finally {
    await workload?.stop();
    for (const d of cluster.daemons) d.killNow();
    disk.unmount();
    cluster.dispose();
    report.totalMs = Math.round(since());
  }
  return report;
}

function checkLinearizable(report: ChaosReport, ops: CasOp[]): void {
  const bumps = sawVersionBumps(ops);
  const model = casRegister('', bumps);
  const r = checkHistory(model, ops, 2_000_000);
  report.linearizable = { verdict: r.verdict, versionBumps: bumps, perKey: r.keys.map((k) => ({ key: k.key, verdict: k.verdict, ops: k.ops.length, steps: k.steps })) };
  for (const k of r.keys) {
    if (k.verdict === 'unknown') report.notes.push(`linearizability of ${k.key}: unknown (the search gave up after ${k.steps} steps)`);
    if (k.verdict !== 'illegal') continue;
    const why = narrowViolation(casRegister('', bumps), k.ops, casPending);
    report.anomalies.push(`not linearizable: ${k.key}; the history first fails at ${why.at.toFixed(0)} ms; the operations before it:\n${why.ops.map((o) => `      ${formatCasOp(o)}`).join('\n')}`);
  }
}

/** Every acknowledged write's token is in the final value of its key, which every manager agrees on. */
function checkNoLostWrites(report: ChaosReport, ops: CasOp[], finals: Map<string, Set<string>>): void {
  for (const [key, values] of finals) {
    if (values.size > 1) report.anomalies.push(`managers disagree on ${key}'s final ${LABEL} label: ${[...values].map((v) => JSON.stringify(v.slice(-60))).join(' vs ')}`);
    if (values.size === 0) {
      report.anomalies.push(`no manager answered the final read of ${key}: its acknowledged writes cannot be checked`);
      continue;
    }
    const final = new Set([...values][0]!.split(' '));
    const lost = ops.filter((o) => o.key === key && o.input.f === 'cas' && o.output === 'ok').map((o) => (o.input as { value: string }).value.split(' ').at(-1)!).filter((t) => !final.has(t));
    if (lost.length) report.anomalies.push(`acknowledged writes lost on ${key}: ${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ` and ${lost.length - 10} more` : ''}`);
  }
}

/** Whether a daemon is a manager now (by its own /info); one that does not answer counts as what it was booted as. */
async function isManager(d: Daemon, bootedAs: boolean): Promise<boolean> {
  if (!d.isRunning) return bootedAs;
  try {
    const info = await d.json<{ Swarm?: { ControlAvailable?: boolean; LocalNodeState?: string } }>('/info');
    return info.Swarm?.LocalNodeState === 'active' ? info.Swarm.ControlAvailable === true : bootedAs;
  } catch { return bootedAs; }
}

/**
 * The daemons that are managers now. The manager count may have replaced a manager lost past its
 * grace period and demoted the surplus (src/daemon/manager-count.ts): a booted manager that is a
 * worker now is left out and noted, a promoted worker is in.
 */
async function stillManagers(managers: Daemon[], workers: Daemon[], report: ChaosReport): Promise<Daemon[]> {
  const was = await Promise.all(managers.map((m) => isManager(m, true)));
  const now = await Promise.all(workers.map((w) => isManager(w, false)));
  const demoted = managers.filter((_, i) => !was[i]);
  const promoted = workers.filter((_, i) => now[i]);
  if (demoted.length) report.notes.push(`demoted by the manager count during the run (now workers, not read at the end): ${demoted.map((m) => m.name).join(', ')}`);
  if (promoted.length) report.notes.push(`promoted by the manager count during the run (read at the end): ${promoted.map((m) => m.name).join(', ')}`);
  return [...managers.filter((_, i) => was[i]), ...promoted];
}

/** One leader that every running manager (as they are now, among `daemons`) names. */
async function agreedLeader(daemons: Daemon[], boundMs: number): Promise<void> {
  await waitFor('one leader every manager shows', async () => {
    const current: Daemon[] = [];
    for (const d of daemons) if (d.isRunning && (await isManager(d, false))) current.push(d);
    if (current.length === 0) return false;
    const views = await Promise.all(current.map(async (m) => (await m.json<any[]>('/nodes')).find((n) => n.ManagerStatus?.Leader)?.ID as string | undefined));
    return !!views[0] && views.every((v) => v === views[0]);
  }, boundMs);
}

async function checkReplicas(report: ChaosReport, managers: Daemon[], replicas: number, boundMs: number): Promise<void> {
  try {
    await waitFor(`${replicas} running tasks of chaos-sleep after the heal`, async () => {
      const m = managers.find((x) => x.isRunning)!;
      return (await m.running('chaos-sleep')).length === replicas;
    }, boundMs, 250);
  } catch (e) {
    report.anomalies.push(`desired replicas not restored: ${(e as Error).message}`);
  }
}

/** Each running manager's own raft view (GET /raft answers locally), for a stuck cluster's report. */
async function raftViews(managers: Daemon[]): Promise<string> {
  const views = await Promise.all(managers.map(async (m) => {
    if (!m.isRunning) return `${m.name} down`;
    try {
      const v = await m.json<any>('/raft', { signal: AbortSignal.timeout(2_000) });
      return `${m.name} ${v.Role} term ${v.Term} leader ${String(v.Leader).slice(-6) || '-'} commit ${v.CommitIndex} applied ${v.AppliedIndex} last ${v.LastIndex}`;
    } catch (e) {
      // Asked again by another client (curl): tells a daemon that does not answer from a stuck client connection.
      const c = Bun.spawnSync(['curl', '-s', '-m', '3', '--unix-socket', m.socket, 'http://localhost/raft'], { stdout: 'pipe', stderr: 'ignore' });
      const byCurl = c.exitCode === 0 ? `curl got: ${c.stdout.toString().slice(0, 160)}` : `curl: no answer either (exit ${c.exitCode})`;
      return `${m.name} no answer (${(e as Error).message.slice(0, 80)}; ${byCurl})`;
    }
  }));
  return views.join('; ');
}

/** Every daemon's whole log, kept after the cluster is removed: what a failed seed's report points to. */
function keepLogs(daemons: Daemon[], seed: number): string {
  const dir = join(tmpdir(), `shoal-chaos-${seed}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  for (const d of daemons) writeFileSync(join(dir, `${d.name}.log`), d.output);
  return dir;
}

/** A fresh 5 + 3 cluster, the fifth manager's data dir on a tmpfs; on failure everything it made is removed. */
async function bootCluster(report: ChaosReport) {
  const cluster = await Cluster.netns({ hosts: 8 });
  // Eight daemons starting at once on a shared 2-core machine: a start (or a restart after kill -9) can be slow.
  cluster.startTimeoutMs = 60_000;
  const disk = new DiskFull(join(cluster.dir, 'h4'));
  try {
    try {
      disk.mount();
    } catch (e) {
      report.skipped.push(`disk-full: skipped: cannot mount a tmpfs: ${(e as Error).message}`);
    }
    const b = await cluster.boot({ managers: 5, workers: 3, init: ['--managers', '5'], readyMs: 120_000 });
    return { cluster, disk, ...b };
  } catch (e) {
    for (const d of cluster.daemons) d.killNow();
    disk.unmount();
    cluster.dispose();
    throw e;
  }
}
