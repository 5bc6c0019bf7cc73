import { describe, expect, test } from 'bun:test';
import type { Node, Service, Task } from '../types/index.ts';
import type { Client } from './client.ts';
import { ConvergeError, waitConverged } from './progress.ts';

const svc: Service = {
  ID: 'svc', Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '',
  Spec: { Name: 'web', TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['x'] } }, Mode: { Replicated: { Replicas: 2 } } },
};
const t = (id: string, state: Task['Status']['State'], err?: string, slot = 1): Task => ({
  ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', Spec: svc.Spec.TaskTemplate, ServiceID: 'svc', Slot: slot, NodeID: 'n',
  DesiredState: state === 'failed' ? 'shutdown' : 'running', Status: { Timestamp: new Date().toISOString(), State: state, Message: '', ...(err ? { Err: err } : {}) },
});

/** A client whose task list moves through `steps`, one per poll (the last one repeats). */
function fakeClient(steps: Task[][], services: Service[] = [svc]): Client {
  let i = 0;
  let j = 0;
  return {
    service: async () => services[Math.min(j++, services.length - 1)]!,
    tasks: async () => steps[Math.min(i++, steps.length - 1)]!,
    nodes: async () => [] as Node[],
  } as unknown as Client;
}

describe('waitConverged', () => {
  test('prints each change once, then converged (not a terminal)', async () => {
    let out = '';
    await waitConverged(fakeClient([[], [t('a', 'running')], [t('a', 'running')], [t('a', 'running'), t('b', 'running', undefined, 2)]]), 'svc', {
      timeoutMs: 5000, write: (s) => void (out += s), tty: false,
    });
    expect(out).toBe('web: 0/2 running\n1/2: running\nweb: 1/2 running\n2/2: running\nweb: 2/2 running\nverify: Service converged\n');
  });

  test('on a terminal, one line rewritten in place', async () => {
    let out = '';
    await waitConverged(fakeClient([[t('a', 'running')], [t('a', 'running'), t('b', 'running', undefined, 2)]]), 'svc', { timeoutMs: 5000, write: (s) => void (out += s), tty: true });
    expect(out).toBe('\r\x1b[K1/2: running\n\r\x1b[Kweb: 1/2 running\r\x1b[K2/2: running\nweb: 1/2 running\r\x1b[Kweb: 2/2 running\nverify: Service converged\n');
  });

  test('gives up on repeated failures with the reason', async () => {
    const failing = [t('f1', 'failed', 'exit code 1'), t('f2', 'failed', 'exit code 1'), t('f3', 'failed', 'exit code 2')];
    const p = waitConverged(fakeClient([failing]), 'svc', { timeoutMs: 5000, write: () => {}, tty: false });
    await expect(p).rejects.toThrow(ConvergeError);
    await expect(waitConverged(fakeClient([failing]), 'svc', { timeoutMs: 5000, write: () => {}, tty: false })).rejects.toThrow('web is not converging: task f3 failed: exit code 2');
  });

  test('an update waits for the verdict: completed; paused names the task; rolled back is an error unless asked for', async () => {
    const both = [t('a', 'running'), t('b', 'running', undefined, 2)];
    const at = (State: NonNullable<Service['UpdateStatus']>['State'], Message = '') => ({ ...svc, UpdateStatus: { State, Message } });
    let out = '';
    await waitConverged(fakeClient([both], [at('updating'), at('updating'), at('completed')]), 'svc', { timeoutMs: 5000, write: (s) => void (out += s), tty: false });
    expect(out.match(/verify: Service converged/g)).toHaveLength(1);
    const paused = at('paused', 'update paused due to failure or early termination of task abc (web.2): failed: exit code 3');
    await expect(waitConverged(fakeClient([both], [paused]), 'svc', { timeoutMs: 5000, write: () => {}, tty: false })).rejects.toThrow('web: update paused: update paused due to failure or early termination of task abc (web.2): failed: exit code 3');
    const back = [at('rollback_started', 'update rolled back due to x'), at('rollback_completed', 'rollback completed')];
    out = '';
    await expect(waitConverged(fakeClient([both], back), 'svc', { timeoutMs: 5000, write: (s) => void (out += s), tty: false })).rejects.toThrow('web: update rolled back due to x');
    expect(out).toStartWith('rollback: update rolled back due to x\n');
    await waitConverged(fakeClient([both], back), 'svc', { timeoutMs: 5000, write: () => {}, tty: false, action: 'rollback' });
  });

  test('a failed slot shows its task and error', async () => {
    let out = '';
    const failing = [t('f1', 'failed', 'exit code 1', 2), t('a', 'running')];
    await expect(waitConverged(fakeClient([failing]), 'svc', { timeoutMs: 100, write: (s) => void (out += s), tty: false })).rejects.toThrow();
    expect(out).toContain('2/2: failed (task f1: exit code 1)');
  });

  test('times out naming the state and the pending reason', async () => {
    const pending = { ...t('p', 'pending'), Status: { Timestamp: '', State: 'pending' as const, Message: 'no suitable node', Err: 'no suitable node' } };
    await expect(waitConverged(fakeClient([[pending]]), 'svc', { timeoutMs: 150, write: () => {}, tty: false })).rejects.toThrow(
      'web did not converge within 150ms: web: 0/2 running (pending: no suitable node)',
    );
  });
});
