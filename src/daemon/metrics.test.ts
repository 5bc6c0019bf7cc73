import { expect, test } from 'bun:test';
import { Scrape } from '../../test/harness/prometheus.ts';
import { memoryStore } from '../store/index.ts';
import type { Task } from '../types/index.ts';
import type { DaemonContext } from './context.ts';
import { daemonMetrics } from './metrics.ts';

function task(id: string, state: string, runtime: string, err?: string): Task {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', ServiceID: 's', Slot: 1, NodeID: '', DesiredState: 'running',
    Spec: { Runtime: runtime }, Status: { Timestamp: '', State: state, Message: '', ...(err ? { Err: err } : {}) },
  } as unknown as Task;
}

/** The parts of a daemon the scrape reads, faked. */
function fakeDaemon(role: 'manager' | 'worker') {
  const store = memoryStore();
  const ctx = {
    role,
    store,
    state: { store, raft: role === 'manager' ? { status: { term: 3, commit: 40, applied: 37, role: 'leader' } } : null },
    dispatcher: role === 'manager' ? { sessions: () => [{}, {}] } : null,
    worker: {
      agent: { tasks: () => [{ state: 'running', runtime: 'vm' }, { state: 'running', runtime: 'vm' }, { state: 'preparing', runtime: 'process' }] },
      hostNet: { mesh: { traffic: () => ({ active: 4, services: new Map([['web', { connections: 9, bytesIn: 100, bytesOut: 2000 }]]) }) } },
    },
  };
  return { ctx: ctx as unknown as DaemonContext, store };
}

test('a manager\'s scrape: raft, tasks by state and runtime, pending by reason, sessions, this node and its mesh', async () => {
  const { ctx, store } = fakeDaemon('manager');
  await store.update((tx) => {
    tx.create('tasks', task('t1', 'running', 'process'));
    tx.create('tasks', task('t2', 'running', 'process'));
    tx.create('tasks', task('t3', 'pending', 'vm', 'no suitable node (1 node not available for new tasks)'));
    tx.create('tasks', task('t4', 'pending', 'vm'));
  });
  const s = new Scrape((await daemonMetrics(ctx)()).body);
  expect(s.value('shoal_raft_term')).toBe(3);
  expect(s.value('shoal_raft_commit_index')).toBe(40);
  expect(s.value('shoal_raft_applied_index')).toBe(37);
  expect(s.value('shoal_raft_apply_lag_entries')).toBe(3);
  expect(s.value('shoal_raft_leader')).toBe(1);
  expect(s.value('shoal_dispatcher_sessions')).toBe(2);
  expect(s.value('shoal_tasks', { state: 'running', runtime: 'process' })).toBe(2);
  expect(s.value('shoal_tasks', { state: 'pending', runtime: 'vm' })).toBe(2);
  expect(s.value('shoal_scheduler_pending_tasks', { reason: 'no suitable node (1 node not available for new tasks)' })).toBe(1);
  expect(s.value('shoal_scheduler_pending_tasks', { reason: 'waiting for the scheduler' })).toBe(1);
  expect(s.value('shoal_node_tasks', { state: 'running', runtime: 'vm' })).toBe(2);
  expect(s.value('shoal_node_tasks', { state: 'preparing', runtime: 'process' })).toBe(1);
  expect(s.value('shoal_mesh_active_connections')).toBe(4);
  expect(s.value('shoal_mesh_connections_total', { service: 'web' })).toBe(9);
  expect(s.value('shoal_mesh_bytes_total', { service: 'web', direction: 'in' })).toBe(100);
  expect(s.value('shoal_mesh_bytes_total', { service: 'web', direction: 'out' })).toBe(2000);
  expect(s.family('process_resident_memory_bytes').type).toBe('gauge');

  // A task that left pending is gone from the reasons at the next scrape (the gauges are reset each time).
  await store.update((tx) => tx.update('tasks', { ...tx.get('tasks', 't4')!, Status: { ...tx.get('tasks', 't4')!.Status, State: 'assigned' } }));
  const again = new Scrape((await daemonMetrics(ctx)()).body);
  expect(again.samples('shoal_scheduler_pending_tasks').length).toBe(1);
});

test('a worker\'s scrape has no manager-only series', async () => {
  const s = new Scrape((await daemonMetrics(fakeDaemon('worker').ctx)()).body);
  for (const name of ['shoal_raft_term', 'shoal_raft_commit_index', 'shoal_dispatcher_sessions', 'shoal_tasks', 'shoal_scheduler_pending_tasks']) expect(s.families.has(name)).toBe(false);
  expect(s.value('shoal_node_tasks', { state: 'running', runtime: 'vm' })).toBe(2);
});
