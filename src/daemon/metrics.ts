/**
 * `GET /metrics` of one daemon: the process-wide counters and histograms (src/lib/metrics.ts) plus
 * gauges read from this daemon's parts at scrape time (collect callbacks), so that raft steps, store
 * writes and task reports do no metrics work of their own for them. A manager reports the cluster's
 * tasks from its store; every node reports the tasks its own agent runs.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics, managerMetricsRegistry, metricsRegistry } from '../lib/metrics.ts';
import { runtimeOf } from '../types/runtime.ts';
import type { DaemonContext } from './context.ts';

export interface Scrape {
  contentType: string;
  body: string;
}

/** Tasks in `pending` with the scheduler's reason; one without a reason yet waits for its first pass. */
const NO_REASON = 'waiting for the scheduler';

export function daemonMetrics(ctx: DaemonContext): () => Promise<Scrape> {
  collectProcessMetrics();
  // Series only a manager has (raft, the store's tasks, the dispatcher) are on a registry of their
  // own, left out of a worker's scrape: an unlabelled gauge would otherwise read 0 there, not absent.
  const managerReg = new Registry();
  const nodeReg = new Registry();
  const manager = [managerReg];
  const node = [nodeReg];
  const raft = () => ctx.state.raft?.status ?? null;

  new Gauge({
    name: 'shoal_raft_term', help: 'Raft term this manager is in (absent on a worker).', registers: manager,
    collect() {
      const s = raft();
      if (s) this.set(s.term);
    },
  });
  new Gauge({
    name: 'shoal_raft_commit_index', help: 'Highest raft log index this manager knows to be committed.', registers: manager,
    collect() {
      const s = raft();
      if (s) this.set(s.commit);
    },
  });
  new Gauge({
    name: 'shoal_raft_applied_index', help: 'Highest raft log index applied to this manager\'s store.', registers: manager,
    collect() {
      const s = raft();
      if (s) this.set(s.applied);
    },
  });
  new Gauge({
    name: 'shoal_raft_apply_lag_entries', help: 'Committed entries this manager has not applied yet (commit index - applied index).', registers: manager,
    collect() {
      const s = raft();
      if (s) this.set(Math.max(0, s.commit - s.applied));
    },
  });
  new Gauge({
    name: 'shoal_raft_leader', help: '1 when this manager is the raft leader, else 0.', registers: manager,
    collect() {
      const s = raft();
      if (s) this.set(s.role === 'leader' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'shoal_dispatcher_sessions', help: 'Worker sessions the dispatcher holds (on the leader; 0 elsewhere).', registers: manager,
    collect() {
      if (ctx.role === 'manager') this.set(ctx.dispatcher?.sessions().length ?? 0);
    },
  });
  new Gauge({
    name: 'shoal_tasks', help: 'Tasks in the cluster by observed state and runtime, from this manager\'s store.', labelNames: ['state', 'runtime'] as const, registers: manager,
    collect() {
      this.reset();
      if (!raft()) return;
      const counts = new Map<string, { state: string; runtime: string; n: number }>();
      for (const t of ctx.store.list('tasks')) {
        const runtime = runtimeOf(t.Spec);
        const key = `${t.Status.State}\0${runtime}`;
        const c = counts.get(key);
        if (c) c.n++;
        else counts.set(key, { state: t.Status.State, runtime, n: 1 });
      }
      for (const c of counts.values()) this.set({ state: c.state, runtime: c.runtime }, c.n);
    },
  });
  new Gauge({
    name: 'shoal_scheduler_pending_tasks', help: 'Tasks in pending that should run, by the reason the scheduler gave (no node fits, and why).', labelNames: ['reason'] as const, registers: manager,
    collect() {
      this.reset();
      if (!raft()) return;
      const counts = new Map<string, number>();
      for (const t of ctx.store.list('tasks')) {
        if (t.Status.State !== 'pending' || t.DesiredState !== 'running') continue;
        const reason = t.Status.Err || NO_REASON;
        counts.set(reason, (counts.get(reason) ?? 0) + 1);
      }
      for (const [reason, n] of counts) this.set({ reason }, n);
    },
  });
  new Gauge({
    name: 'shoal_node_tasks', help: 'Tasks this node\'s agent runs, by observed state and runtime.', labelNames: ['state', 'runtime'] as const, registers: node,
    collect() {
      this.reset();
      const counts = new Map<string, { state: string; runtime: string; n: number }>();
      for (const t of ctx.worker?.agent.tasks() ?? []) {
        const runtime = t.runtime ?? 'unknown';
        const key = `${t.state}\0${runtime}`;
        const c = counts.get(key);
        if (c) c.n++;
        else counts.set(key, { state: t.state, runtime, n: 1 });
      }
      for (const c of counts.values()) this.set({ state: c.state, runtime: c.runtime }, c.n);
    },
  });
  const mesh = () => ctx.worker?.hostNet.mesh.traffic() ?? null;
  new Gauge({
    name: 'shoal_mesh_active_connections', help: 'TCP connections the ingress mesh of this node relays now.', registers: node,
    collect() {
      this.set(mesh()?.active ?? 0);
    },
  });
  // Counters read at scrape from the proxy's plain per-port totals: the relay's hot path only adds.
  new Counter({
    name: 'shoal_mesh_connections_total', help: 'TCP connections the ingress mesh of this node accepted, by service.', labelNames: ['service'] as const, registers: node,
    collect() {
      this.reset();
      for (const [service, t] of mesh()?.services ?? []) this.inc({ service }, t.connections);
    },
  });
  new Counter({
    name: 'shoal_mesh_bytes_total',
    help: 'Bytes the ingress mesh of this node relayed, by service and direction (in: client to task, out: task to client); the native relay adds a connection\'s bytes when it closes.',
    labelNames: ['service', 'direction'] as const,
    registers: node,
    collect() {
      this.reset();
      for (const [service, t] of mesh()?.services ?? []) {
        this.inc({ service, direction: 'in' }, t.bytesIn);
        this.inc({ service, direction: 'out' }, t.bytesOut);
      }
    },
  });

  const onManager = Registry.merge([metricsRegistry, managerMetricsRegistry, managerReg, nodeReg]);
  const onWorker = Registry.merge([metricsRegistry, nodeReg]);
  return async () => {
    const reg = ctx.role === 'manager' && ctx.state.raft ? onManager : onWorker;
    return { contentType: reg.contentType, body: await reg.metrics() };
  };
}
