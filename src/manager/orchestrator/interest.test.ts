import { describe, expect, test } from 'bun:test';
import type { Task, TaskState } from '../../types/index.ts';
import type { ObjectEvent } from '../stage.ts';
import { orchestratorInterested } from './interest.ts';

const task = (state: TaskState, over: Partial<Task> = {}): Task =>
  ({ ID: 't1', ServiceID: 's1', Slot: 1, NodeID: 'n1', DesiredState: 'running', Status: { State: state, Timestamp: '' }, ...over }) as unknown as Task;
const moved = (from: TaskState, to: TaskState, over: Partial<Task> = {}, rolling?: (id: string) => boolean) =>
  orchestratorInterested({ table: 'tasks', kind: 'update', old: task(from), object: task(to, over) } as unknown as ObjectEvent, rolling);

describe('orchestratorInterested', () => {
  test('a step within "on its way to run" plans nothing; crossing a boundary does', () => {
    expect(moved('assigned', 'accepted')).toBe(false);
    expect(moved('preparing', 'starting')).toBe(false);
    expect(moved('new', 'pending')).toBe(false);
    expect(moved('pending', 'assigned')).toBe(true); // placed: an update's predecessor may stop now
    expect(moved('starting', 'running')).toBe(true);
    expect(moved('assigned', 'running')).toBe(true);
    expect(moved('running', 'failed')).toBe(true);
    expect(moved('starting', 'failed')).toBe(true);
    expect(moved('shutdown', 'failed')).toBe(true); // states past running count by name
  });

  test('desired state and node always count; a status message alone never does', () => {
    expect(moved('accepted', 'preparing', { DesiredState: 'shutdown' })).toBe(true);
    expect(moved('accepted', 'preparing', { NodeID: 'n2' })).toBe(true);
    expect(moved('running', 'running')).toBe(false);
  });

  test('creations, removals, services and nodes always count', () => {
    expect(orchestratorInterested({ table: 'tasks', kind: 'create', object: task('new') } as unknown as ObjectEvent)).toBe(true);
    expect(orchestratorInterested({ table: 'tasks', kind: 'delete', object: task('running') } as unknown as ObjectEvent)).toBe(true);
    expect(orchestratorInterested({ table: 'nodes', kind: 'update', object: {} } as unknown as ObjectEvent)).toBe(true);
    expect(orchestratorInterested({ table: 'services', kind: 'update', object: {} } as unknown as ObjectEvent)).toBe(true);
  });

  test('outside a rolling update only a task\'s end counts; during one, every boundary does', () => {
    const idle = () => false;
    const rollingS1 = (id: string) => id === 's1';
    expect(moved('pending', 'assigned', {}, idle)).toBe(false);
    expect(moved('starting', 'running', {}, idle)).toBe(false);
    expect(moved('running', 'failed', {}, idle)).toBe(true);
    expect(moved('assigned', 'shutdown', {}, idle)).toBe(true);
    expect(moved('running', 'running', { DesiredState: 'shutdown' }, idle)).toBe(true);
    expect(moved('pending', 'assigned', {}, rollingS1)).toBe(true);
    expect(moved('starting', 'running', {}, rollingS1)).toBe(true);
    expect(moved('accepted', 'preparing', {}, rollingS1)).toBe(false);
  });
});
