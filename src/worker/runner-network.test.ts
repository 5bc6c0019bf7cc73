/**
 * The runner's calls to the network hooks across a daemon restart: a task on an overlay network
 * found running (recovered, no new "running" report) still tells the network agent its pid, so a
 * container's VIP rules follow the table again.
 */
import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Controller, Executor, TaskNetwork } from '../executor/contract.ts';
import { makeTask, waitFor } from '../manager/testkit.ts';
import type { Task } from '../types/index.ts';
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
    await waitFor(() => calls.length > 0, 'started() after recovery');
    expect(calls).toEqual([[task.ID, 4242]]);
  } finally {
    await runner.detach();
    rmSync(dir, { recursive: true, force: true });
  }
});
