import { describe, expect, test } from 'bun:test';
import type { Node, Service, Task } from '../types/index.ts';
import { parseArgs } from './args.ts';
import { replicasCell } from './format.ts';
import { assessJob } from './job-progress.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS } from './service-opts.ts';

const create = (...argv: string[]) => buildServiceSpec(parseArgs(argv, CREATE_OPTIONS, { stopAtPositional: true }), {});
const update = (spec: any, ...argv: string[]) => applyServiceUpdate(spec, parseArgs(argv, UPDATE_OPTIONS), {});

describe('job flags', () => {
  test('--mode replicated-job: --replicas is TotalCompletions, --max-concurrent defaults to it', () => {
    expect(create('--mode', 'replicated-job', '--replicas', '5', '--max-concurrent', '2', 'true').Mode).toEqual({ ReplicatedJob: { TotalCompletions: 5, MaxConcurrent: 2 } });
    expect(create('--mode', 'replicated-job', '--replicas', '3', 'true').Mode).toEqual({ ReplicatedJob: { TotalCompletions: 3, MaxConcurrent: 3 } });
    expect(create('--mode', 'replicated-job', 'true').Mode).toEqual({ ReplicatedJob: { TotalCompletions: 1, MaxConcurrent: 1 } });
    expect(create('--mode', 'global-job', 'true').Mode).toEqual({ GlobalJob: {} });
  });

  test('flags that do not fit the mode are refused, naming the flag', () => {
    expect(() => create('--mode', 'global-job', '--replicas', '2', 'true')).toThrow('--replicas cannot be used with --mode global-job');
    expect(() => create('--mode', 'global', '--replicas', '2', 'true')).toThrow('--replicas cannot be used with --mode global');
    expect(() => create('--max-concurrent', '2', 'true')).toThrow('--max-concurrent only applies to --mode replicated-job');
    expect(() => create('--mode', 'replicated-job', '--max-concurrent', '0', 'true')).toThrow('max-concurrent');
    expect(() => create('--mode', 'replicated-job', '--max-concurrent', '-1', 'true')).toThrow('max-concurrent');
    expect(() => create('--mode', 'batch', 'true')).toThrow('replicated-job');
  });

  test('update: --replicas and --max-concurrent on a job', () => {
    const job = create('--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2', 'true');
    expect(update(job, '--replicas', '6').Mode).toEqual({ ReplicatedJob: { TotalCompletions: 6, MaxConcurrent: 2 } });
    expect(update(job, '--max-concurrent', '3').Mode).toEqual({ ReplicatedJob: { TotalCompletions: 4, MaxConcurrent: 3 } });
    expect(update(job).Mode).toEqual(job.Mode);
    const gj = create('--mode', 'global-job', 'true');
    expect(() => update(gj, '--replicas', '2')).toThrow('--replicas cannot be used with a global-job service');
    expect(() => update(create('true'), '--max-concurrent', '2')).toThrow('--max-concurrent only applies to a replicated-job service');
    expect(update(create('true'), '--replicas', '2').Mode).toEqual({ Replicated: { Replicas: 2 } });
  });
});

const svc = (Mode: Service['Spec']['Mode'], iteration = 4): Service => ({
  ID: 's', Version: { Index: 9 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'job', TaskTemplate: { Runtime: 'mock' }, Mode }, JobStatus: { JobIteration: { Index: iteration } },
});
const task = (state: Task['Status']['State'], o: Partial<Task> = {}): Task => ({
  ID: `t${Math.random().toString(36).slice(2)}`, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', Spec: { Runtime: 'mock' }, ServiceID: 's', Slot: 1, NodeID: 'n1',
  Status: { Timestamp: '', State: state, Message: '' }, DesiredState: state === 'complete' ? 'complete' : 'running', JobIteration: { Index: 4 }, ...o,
});
const node = (id: string, availability: Node['Spec']['Availability'] = 'active'): Node => ({
  ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', Spec: { Role: 'worker', Availability: availability }, Status: { State: 'ready' },
  Description: { Hostname: id, Platform: { OS: 'linux', Architecture: 'x86_64' }, Resources: { NanoCPUs: 1, MemoryBytes: 1 }, Engine: { EngineVersion: '', Plugins: [] } },
});

describe('job progress and listing', () => {
  test('a replicated job is done at TotalCompletions of its current run', () => {
    const s = svc({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 3 } });
    const old = task('complete', { JobIteration: { Index: 1 } });
    expect(assessJob(s, [old, task('complete'), task('running')], [])).toEqual({ done: false, line: 'job: 1/3 complete, 1 running' });
    expect(assessJob(s, [task('complete'), task('complete'), task('complete')], []).done).toBe(true);
    const gaveUp = task('failed', { DesiredState: 'shutdown', SlotDone: true, Status: { Timestamp: '', State: 'failed', Message: 'exit 3', Err: 'exit code 3' } });
    expect(assessJob(s, [gaveUp], []).failure).toContain('restart policy gave up: exit code 3');
  });

  test('a global job is done when every usable node completed it', () => {
    const s = svc({ GlobalJob: {} });
    const nodes = [node('n1'), node('n2'), node('n3', 'drain')];
    expect(assessJob(s, [task('complete', { Slot: 0 })], nodes).done).toBe(false);
    expect(assessJob(s, [task('complete', { Slot: 0 }), task('complete', { Slot: 0, NodeID: 'n2' })], nodes)).toEqual({ done: true, line: 'job: 2/2 complete' });
  });

  test('REPLICAS column', () => {
    expect(replicasCell({ ...svc({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 5 } }), ServiceStatus: { RunningTasks: 2, DesiredTasks: 2, CompletedTasks: 3 } })).toBe('2/2 (3/5 completed)');
    expect(replicasCell({ ...svc({ GlobalJob: {} }), ServiceStatus: { RunningTasks: 0, DesiredTasks: 0, CompletedTasks: 3 } })).toBe('0/0 (3 completed)');
    expect(replicasCell({ ...svc({ Replicated: { Replicas: 3 } }), ServiceStatus: { RunningTasks: 1, DesiredTasks: 3 } })).toBe('1/3');
  });
});
