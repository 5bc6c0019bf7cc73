/**
 * The leader failover of bench/control-plane-scale.ts: kill -9 the leader, then time each step of
 * the recovery as the API and the agents see it.
 */
import type { Daemon } from '../test/harness/index.ts';
import { call, post, until } from './cp-probes.ts';
import type { AgentCounts } from './sim-agents.ts';

export interface Failover {
  /** kill → a survivor reports a term above the old leader's (an election began). */
  electionSeconds: number;
  leaderSeconds: number;
  writeSeconds: number;
  reconnectSeconds: number;
  newTaskSeconds: number;
  /** The slowest GET /raft answer from a survivor while waiting for a leader: how loaded they were. */
  slowestRaftAnswerMs: number;
  /** Tasks placed anew after the kill beyond the one added: nodes marked down meanwhile lost theirs. */
  replaced: number;
  nodesDown: number;
  oldLeader: string;
  newLeader: string;
}

async function raftOf(m: Daemon): Promise<{ Role: string; Term: number; ms: number } | null> {
  const t0 = performance.now();
  try {
    const r = await m.api('/raft', { signal: AbortSignal.timeout(5_000) });
    if (!r.ok) return null;
    const b = await r.json() as { Role: string; Term: number };
    return { Role: b.Role, Term: b.Term, ms: performance.now() - t0 };
  } catch {
    return { Role: 'no answer', Term: -1, ms: performance.now() - t0 };
  }
}

export interface FailoverContext {
  managers: Daemon[];
  leader: Daemon;
  nodes: number;
  replicas: number;
  /** The service scaled by one as the write. */
  service: string;
  counts: () => Promise<AgentCounts>;
  log: (m: string) => void;
}

export async function failover(ctx: FailoverContext): Promise<Failover> {
  const { managers, leader, log, counts } = ctx;
  const P = { nodes: ctx.nodes, replicas: ctx.replicas };
  const survivors = managers.filter((m) => m !== leader);
  const before = await counts();
  const oldTerm = (await call(leader, '/raft')).Term as number;
  const svc = ctx.service;
  log(`failover: kill -9 ${leader.name} (pid ${leader.proc!.pid}, term ${oldTerm})`);
  const t0 = performance.now();
  await leader.kill9();
  const since = () => (performance.now() - t0) / 1000;
  const bound = 180_000;
  let electionSeconds = NaN;
  let slowest = 0;
  // Both survivors asked at once, each answer bounded: a busy one does not hide the other.
  const newLeader = await until('a surviving manager whose GET /raft says leader', async () => {
    const views = await Promise.all(survivors.map(raftOf));
    for (const v of views) if (v) slowest = Math.max(slowest, v.ms);
    if (Number.isNaN(electionSeconds) && views.some((v) => v && v.Term > oldTerm)) {
      electionSeconds = since();
      log(`  an election began (term > ${oldTerm}) at ${electionSeconds.toFixed(2)} s`);
    }
    const i = views.findIndex((v) => v?.Role === 'leader');
    return i >= 0 ? survivors[i]! : null;
  }, bound, 50);
  const leaderSeconds = since();
  log(`  ${newLeader.name} leads at ${leaderSeconds.toFixed(2)} s (slowest /raft answer ${slowest.toFixed(0)} ms)`);
  // A write through the cluster: the service scaled by one (any survivor forwards to the leader).
  await until(`service ${svc} scaled to ${P.replicas + 1} through the new leader`, async () => {
    const s = await call(newLeader, `/services/${svc}`);
    const spec = { ...s.Spec, Mode: { Replicated: { Replicas: P.replicas + 1 } } };
    await post(newLeader, `/services/${s.ID}/update?version=${s.Version.Index}`, spec);
    return true;
  }, bound, 20);
  const writeSeconds = since();
  log(`  write accepted at ${writeSeconds.toFixed(2)} s`);
  await until(`all ${P.nodes} agents registered again`, async () => {
    const c = await counts();
    return c.connected === P.nodes && c.registrations >= before.registrations + P.nodes;
  }, bound, 100);
  const reconnectSeconds = since();
  log(`  all agents in session again at ${reconnectSeconds.toFixed(2)} s`);
  await until(`the new task of ${svc} running`, async () => {
    const ts = await call<any[]>(newLeader, `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [svc], 'desired-state': ['running'] }))}`);
    return ts.filter((t) => t.Status.State === 'running').length === P.replicas + 1;
  }, bound, 100);
  const newTaskSeconds = since();
  const after = await counts();
  const nodes = await call<any[]>(newLeader, '/nodes');
  return {
    electionSeconds, leaderSeconds, writeSeconds, reconnectSeconds, newTaskSeconds, slowestRaftAnswerMs: slowest,
    replaced: Math.max(0, after.assigned - before.assigned - 1),
    nodesDown: nodes.filter((n) => n.Spec.Role === 'worker' && n.Status.State !== 'ready').length,
    oldLeader: leader.name, newLeader: newLeader.name,
  };
}
