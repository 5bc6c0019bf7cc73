/**
 * The runner's calls to the network hooks: an isolated executor hands the task's pid to the network
 * agent through `TaskNetwork.started` while its start is still waiting (a container's health check),
 * so the VIP rules do not wait for "running"; and across a daemon restart a task on an overlay
 * network found running (recovered, no new "running" report) still tells the network agent its pid,
 * so a container's VIP rules follow the table again.
 */
import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Controller, Executor, TaskContext, TaskNetwork } from '../executor/contract.ts';
import { waitFor as until } from '../../test/harness/wait.ts';
import { makeTask } from '../manager/testkit.ts';
import type { Task, TaskStatus } from '../types/index.ts';
import { type TaskNetworking, TaskRunner } from './runner.ts';

function fakeExecutor(pid: number): Executor {
  const ctl = {
    prepare: async () => {}, start: async () => {}, stop: async () => {}, remove: async () => {},
    wait: (signal: AbortSignal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
    recover: async () => true,
    logs: async function* () {},
    stats: async () => ({ pid }),
  } as unknown as Controller;
  return {
    name: 'mock', capabilities: { isolation: true, recover: true } as Executor['capabilities'],
    fingerprint: async () => ({}) as never, validate: () => null, controller: () => ctl,
  };
}

test('a task on a network recovered running: the network agent hears its pid (started)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-runner-net-'));
  const calls: [string, number | undefined][] = [];
  const network: TaskNetworking = {
    prepare: async (): Promise<TaskNetwork> => ({ attachments: [], dns: [] }),
    started: async (id, pid) => { calls.push([id, pid]); },
    release: async () => {},
  };
  const task = makeTask('svc', { state: 'running', NetworksAttachments: [{}] as Task['NetworksAttachments'] });
  const runner = new TaskRunner(task, { catalog: { get: () => fakeExecutor(4242) }, dataDir: dir, report: () => {}, network });
  try {
    runner.start();
    await until('started() after recovery', () => calls.length > 0);
    expect(calls).toEqual([[task.ID, 4242]]);
  } finally {
    await runner.detach();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Stands for the container executor with a health check: start() hands the pid to the worker as
 * soon as the namespace exists (`ctx.network.started`), then waits until the test says "healthy".
 */
function healthCheckedExecutor(pid: number, healthy: Promise<void>, seen: { ctx?: TaskContext }): Executor {
  const ctl = (ctx: TaskContext) => ({
    prepare: async () => {}, stop: async () => {}, remove: async () => {}, recover: async () => false,
    start: async () => {
      await ctx.network?.started?.(pid);
      await healthy;
    },
    wait: (signal: AbortSignal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
    logs: async function* () {},
    stats: async () => ({ pid }),
    pid: async () => pid,
  }) as unknown as Controller;
  return {
    name: 'mock', capabilities: { isolation: true, recover: true } as Executor['capabilities'],
    fingerprint: async () => ({}) as never, validate: () => null,
    controller: (_task, ctx) => { seen.ctx = ctx; return ctl(ctx); },
  };
}

test('an isolated task waiting for its health check: the network agent hears its pid before it runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-runner-net-'));
  const calls: { id: string; pid: number | undefined; reported: string[] }[] = [];
  const reports: TaskStatus[] = [];
  const states = () => reports.map((r) => r.State);
  const network: TaskNetworking = {
    prepare: async (): Promise<TaskNetwork> => ({ attachments: [], dns: ['10.0.1.1'] }),
    started: async (id, pid) => { calls.push({ id, pid, reported: states() }); },
    release: async () => {},
  };
  let healthy = () => {};
  const seen: { ctx?: TaskContext } = {};
  const exec = healthCheckedExecutor(4343, new Promise<void>((r) => { healthy = r; }), seen);
  const task = makeTask('svc', { state: 'assigned', NetworksAttachments: [{}] as Task['NetworksAttachments'] });
  const runner = new TaskRunner(task, { catalog: { get: () => exec }, dataDir: dir, report: (_id, st) => reports.push(st), network });
  try {
    runner.start();
    await until('started() during the start', () => calls.length > 0);
    // Called from inside start(), which has not returned: the task is "starting", not "running".
    expect(calls[0]).toMatchObject({ id: task.ID, pid: 4343 });
    expect(calls[0]!.reported).toContain('starting');
    expect(calls[0]!.reported).not.toContain('running');
    expect(seen.ctx?.network?.dns).toEqual(['10.0.1.1']); // the agent's answer, with the callback added
    healthy();
    await until('running once healthy', () => states().includes('running'));
    // And again on "running" (the agent's started is idempotent), for executors that never call it.
    await until('started() on running', () => calls.length === 2);
    expect(calls[1]).toMatchObject({ id: task.ID, pid: 4343 });
  } finally {
    healthy();
    await runner.detach();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TaskNetwork.started never rejects: a failing network agent is logged, the start goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-runner-net-'));
  const reports: TaskStatus[] = [];
  const logs: string[] = [];
  const network: TaskNetworking = {
    prepare: async (): Promise<TaskNetwork> => ({ attachments: [], dns: [] }),
    started: async () => { throw new Error('iptables-restore: boom'); },
    release: async () => {},
  };
  const exec = healthCheckedExecutor(4444, Promise.resolve(), {});
  const task = makeTask('svc', { state: 'assigned', NetworksAttachments: [{}] as Task['NetworksAttachments'] });
  const runner = new TaskRunner(task, { catalog: { get: () => exec }, dataDir: dir, report: (_id, st) => reports.push(st), network, log: (m) => logs.push(m) });
  try {
    runner.start();
    await until('running despite the failing agent', () => reports.some((r) => r.State === 'running'));
    await until('both failures logged', () => logs.filter((l) => l.includes('iptables-restore: boom')).length === 2);
    expect(reports.map((r) => r.State)).not.toContain('failed');
  } finally {
    await runner.detach();
    rmSync(dir, { recursive: true, force: true });
  }
});
