import { describe, expect, test } from 'bun:test';
import type { Node, Service, Task } from '../types/index.ts';
import { ago, infoText, nodeTable, serviceTable, table, taskTable } from './format.ts';
import { assess } from './progress.ts';

const svc = (name: string, extra: Partial<Service['Spec']> = {}): Service => ({
  ID: `${name}000000000000000000000`.slice(0, 25), Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '',
  Spec: { Name: name, TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['x'] } }, Mode: { Replicated: { Replicas: 3 } }, ...extra },
});
const node: Node = {
  ID: 'node1aaaaaaaaaaaaaaaaaaaa', Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '',
  Spec: { Role: 'manager', Availability: 'active' },
  Description: { Hostname: 'host-a', Platform: { Architecture: 'x86_64', OS: 'linux' }, Resources: { NanoCPUs: 1, MemoryBytes: 1 }, Engine: { EngineVersion: '0.1.0', Plugins: [] }, Runtimes: [{ Name: 'process', Healthy: true }, { Name: 'vm', Healthy: false }] },
  Status: { State: 'ready' },
  ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '' },
};
let n = 0;
const task = (s: Service, slot: number, state: Task['Status']['State'], extra: Partial<Task> = {}, status: Partial<Task['Status']> = {}): Task => ({
  ID: `task${++n}`.padEnd(25, 'x'), Version: { Index: 1 }, CreatedAt: new Date(1000 * n).toISOString(), UpdatedAt: '', Spec: s.Spec.TaskTemplate, ServiceID: s.ID, Slot: slot,
  NodeID: node.ID, DesiredState: 'running', Status: { Timestamp: new Date(0).toISOString(), State: state, Message: '', ...status }, ...extra,
});

describe('tables', () => {
  test('aligned columns, last one unpadded', () => {
    expect(table(['A', 'BB'], [['xxx', 'y'], ['z', '']])).toBe('A     BB\nxxx   y\nz\n');
  });
  test('service ls: ID NAME MODE REPLICAS RUNTIME', () => {
    const out = serviceTable([{ ...svc('web'), ServiceStatus: { RunningTasks: 2, DesiredTasks: 3 } }]);
    expect(out.split('\n')[0]).toMatch(/^ID\s+NAME\s+MODE\s+REPLICAS\s+RUNTIME\s+PORTS$/);
    expect(out).toMatch(/web\s+replicated\s+2\/3\s+process/);
    const published = { ...svc('api'), Spec: { ...svc('api').Spec, EndpointSpec: { Ports: [{ TargetPort: 80 }] } }, Endpoint: { Ports: [{ TargetPort: 80, PublishedPort: 30000, Protocol: 'tcp' as const }] } };
    expect(serviceTable([published])).toContain('*:30000->80/tcp');
  });
  test('service ps: history under its slot, pending explanation in ERROR', () => {
    const s = svc('web');
    const old = task(s, 1, 'failed', { DesiredState: 'shutdown' }, { Err: 'exit code 1' });
    const cur = task(s, 1, 'running');
    const pend = task(s, 2, 'pending', { NodeID: '' }, { Message: 'no suitable node (constraint)', Err: 'no suitable node (constraint)' });
    const out = taskTable([old, cur, pend], new Map([[s.ID, s]]), new Map([[node.ID, node]]), 5000);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR$/);
    expect(lines[1]).toMatch(/web\.1\s+host-a\s+Running\s+Running 5 seconds ago$/);
    expect(lines[2]).toMatch(/\\_ web\.1\s+host-a\s+Shutdown\s+Failed 5 seconds ago\s+exit code 1$/);
    expect(lines[3]).toMatch(/web\.2\s+Running\s+Pending 5 seconds ago\s+no suitable node \(constraint\)$/);
  });
  test('node ls marks this node', () => {
    const out = nodeTable([node], node.ID);
    expect(out).toContain(`${node.ID} *`);
    expect(out).toMatch(/host-a\s+Ready\s+Active\s+Leader\s+process,vm\(unhealthy\)\s+0\.1\.0/);
  });
  test('ago', () => {
    const t = new Date(0).toISOString();
    expect(ago(t, 500)).toBe('Less than a second ago');
    expect(ago(t, 1000)).toBe('1 second ago');
    expect(ago(t, 61_000)).toBe('About a minute ago');
    expect(ago(t, 300_000)).toBe('5 minutes ago');
    expect(ago(t, 3 * 3600_000)).toBe('3 hours ago');
    expect(ago(t, 72 * 3600_000)).toBe('3 days ago');
    expect(ago(undefined)).toBe('');
  });
  test('info mentions the swarm state', () => {
    expect(infoText({ Swarm: { LocalNodeState: 'inactive' } })).toContain('Swarm: inactive');
    expect(infoText({ Swarm: { LocalNodeState: 'active', NodeID: 'n', Managers: 1, Nodes: 1 }, Runtimes: { process: { Healthy: true } } })).toContain('Runtimes: process');
  });
});

describe('convergence', () => {
  const s = svc('web');
  test('done when the desired count runs', () => {
    expect(assess(s, [task(s, 1, 'running'), task(s, 2, 'running')], [node], new Set())).toMatchObject({ done: false, line: 'web: 2/3 running' });
    expect(assess(s, [1, 2, 3].map((i) => task(s, i, 'running')), [node], new Set())).toMatchObject({ done: true, line: 'web: 3/3 running' });
  });
  test('a pending task explains itself', () => {
    const p = assess(s, [task(s, 1, 'pending', {}, { Err: 'no suitable node' })], [node], new Set());
    expect(p.line).toBe('web: 0/3 running (pending: no suitable node)');
  });
  test('repeated failures of new tasks give up; old ones do not count', () => {
    const failed = [1, 2, 3].map(() => task(s, 1, 'failed', { DesiredState: 'shutdown' }, { Err: 'exit code 1' }));
    expect(assess(s, failed, [node], new Set()).failure).toContain('exit code 1');
    expect(assess(s, failed, [node], new Set(failed.map((t) => t.ID))).failure).toBeUndefined();
    const once = svc('once', { TaskTemplate: { ProcessSpec: { Command: ['x'] }, RestartPolicy: { Condition: 'none' } }, Mode: { Replicated: { Replicas: 1 } } });
    expect(assess(once, [task(once, 1, 'failed', {}, { Err: 'exit code 3' })], [node], new Set()).failure).toContain('exit code 3');
    expect(assess(once, [task(once, 1, 'complete', { DesiredState: 'shutdown' })], [node], new Set())).toMatchObject({ done: true, line: 'once: 1/1 complete' });
  });
  test('global: one per active node matching the constraints', () => {
    const g = svc('g', { Mode: { Global: {} } });
    expect(assess(g, [], [node], new Set()).line).toBe('g: 0/1 running');
    expect(assess(g, [task(g, 0, 'running')], [node], new Set()).done).toBe(true);
    const drained = { ...node, Spec: { ...node.Spec, Availability: 'drain' as const } };
    expect(assess(g, [], [drained], new Set()).done).toBe(true);
    const picky = svc('p', { Mode: { Global: {} }, TaskTemplate: { ProcessSpec: { Command: ['x'] }, Placement: { Constraints: ['node.labels.zone==mars'] } } });
    expect(assess(picky, [], [node], new Set()).done).toBe(true);
  });
});

describe('convergence after an update', () => {
  test('tasks of an older spec do not count', () => {
    const s = svc('web', { Mode: { Replicated: { Replicas: 1 } } });
    const old = task(s, 1, 'running', { Spec: { Runtime: 'process', ProcessSpec: { Command: ['old'] } }, ServiceVersion: 0 });
    expect(assess(s, [old], [node], new Set()).done).toBe(false);
    const fresh = task(s, 1, 'running', { Spec: { ProcessSpec: { Command: ['x'] }, Runtime: 'process' } });
    expect(assess(s, [fresh], [node], new Set()).done).toBe(true);
  });
});
