/**
 * The process's Prometheus metrics (prom-client): the counters and histograms that code paths bump
 * as things happen, on registries of our own (not prom-client's global one, which a library could
 * also write to): what every node counts, and what only a manager does. Gauges that describe state now (raft indexes, tasks by state, sessions) are not
 * here: they are read at scrape time from the running daemon (src/daemon/metrics.ts), so no hot path
 * pays for them. What a hot path does here is one `inc()` or `observe()`, with label values from a
 * small fixed set.
 *
 * Module-level on purpose: a daemon that restarts in place (join, promotion) stays the same process,
 * and a counter must not go back to zero then (Prometheus reads a drop as a process restart).
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export const metricsRegistry = new Registry();
/**
 * What only a manager does (raft, store writes, scheduling): apart, so that a worker's scrape leaves
 * these series out instead of showing them at 0.
 */
export const managerMetricsRegistry = new Registry();

let defaultsOn = false;
/**
 * Process metrics (process_resident_memory_bytes, nodejs_eventloop_lag_seconds, heap, handles),
 * started by the daemon only: unit tests that import a module with a counter need no timers.
 */
export function collectProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: metricsRegistry });
}

/** Latency buckets from 1 ms to 10 s: a commit on one host takes about a millisecond, across hosts tens. */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const raftLeaderChanges = new Counter({
  name: 'shoal_raft_leader_changes_total',
  help: 'Times the raft leader this manager knows of changed (to another node or to none).',
  registers: [managerMetricsRegistry],
});

export const raftCommitLatency = new Histogram({
  name: 'shoal_raft_commit_latency_seconds',
  help: 'From a proposal on this manager to its entry applied here (committed by a majority, then applied).',
  buckets: SECONDS_BUCKETS,
  registers: [managerMetricsRegistry],
});

export type StoreWriteResult = 'ok' | 'conflict' | 'not_found' | 'unavailable';

export const storeWrites = new Counter({
  name: 'shoal_store_writes_total',
  help: 'Store write transactions this manager proposed, by result (conflict: a stale Version.Index or a name taken; unavailable: no leader, no quorum, timeout).',
  labelNames: ['result'] as const,
  registers: [managerMetricsRegistry],
});

export const schedulerPlacements = new Counter({
  name: 'shoal_scheduler_placements_total',
  help: 'Tasks the scheduler assigned to a node while this manager led (counted when decided: an assignment whose write lost a race is counted again when retried).',
  registers: [managerMetricsRegistry],
});

/** Start latencies reach minutes for a VM under TCG or an image pull: buckets up to 5 min. */
export const executorStartLatency = new Histogram({
  name: 'shoal_executor_start_latency_seconds',
  help: 'From a task preparing to running on this node, by runtime (image pulls, VM boots and health checks included).',
  labelNames: ['runtime'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [metricsRegistry],
});
