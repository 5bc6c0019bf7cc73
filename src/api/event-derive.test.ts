import { describe, expect, test } from 'bun:test';
import type { Node, Service, Task } from '../types/index.ts';
import { deriveEvents, eventLine, nanosOf } from './event-derive.ts';

const AT = '2026-01-02T03:04:05.678Z';
const meta = { Version: { Index: 1 }, CreatedAt: AT, UpdatedAt: AT };
const svc = (replicas: number, state?: string): Service => ({ ID: 's1', ...meta, Spec: { Name: 'web', Labels: { tier: 'front' }, Mode: { Replicated: { Replicas: replicas } }, TaskTemplate: {} }, ...(state ? { UpdateStatus: { State: state } } : {}) } as unknown as Service);
const task = (state: string): Task => ({ ID: 't1', ...meta, ServiceID: 's1', Slot: 2, NodeID: 'n1', Spec: {}, Status: { State: state, Timestamp: AT }, DesiredState: 'running' } as unknown as Task);
const node = (state: string, availability: string): Node => ({ ID: 'n1', ...meta, Spec: { Role: 'worker', Availability: availability }, Description: { Hostname: 'host-a' }, Status: { State: state } } as unknown as Node);

describe('deriveEvents', () => {
  test('a service create, update and remove are Docker service events at the batch time', () => {
    const evs = deriveEvents([
      { kind: 'create', table: 'services', object: svc(1), index: 1 },
      { kind: 'update', table: 'services', object: svc(3, 'updating'), old: svc(1), index: 1 },
      { kind: 'delete', table: 'services', object: svc(3), index: 1 },
    ], AT, () => undefined);
    expect(evs.map((e) => [e.Type, e.Action])).toEqual([['service', 'create'], ['service', 'update'], ['service', 'remove']]);
    expect(evs[1]!.Actor).toEqual({ ID: 's1', Attributes: { name: 'web', 'updatestate.old': '', 'updatestate.new': 'updating', 'replicas.old': '1', 'replicas.new': '3' } });
    expect(evs[0]!.time).toBe(Math.floor(Date.parse(AT) / 1000));
    expect(evs[0]!.timeNano).toBe(BigInt(Date.parse(AT)) * 1_000_000n);
    expect(evs[0]!.labels).toEqual({ tier: 'front' });
  });

  test('a task state change is a task event named by its service, removed service included', () => {
    const evs = deriveEvents([
      { kind: 'update', table: 'tasks', object: task('running'), old: task('starting'), index: 2 },
      { kind: 'delete', table: 'services', object: svc(1), index: 2 },
    ], AT, () => undefined);
    expect(evs[0]).toMatchObject({ Type: 'task', Action: 'running', Actor: { ID: 't1', Attributes: { name: 'web.2', service: 'web', 'service.id': 's1', node: 'n1', 'state.old': 'starting', 'state.new': 'running' } } });
  });

  test('a secret create is a secret event by name; its data is never in the event', () => {
    const data = Buffer.from('hunter2-in-an-event').toString('base64');
    const secret = { ID: 'x1', ...meta, Spec: { Name: 'db-password', Labels: { app: 'db' }, Data: data } } as never;
    const evs = deriveEvents([{ kind: 'create', table: 'secrets', object: secret, index: 5 }], AT, () => undefined);
    expect(evs.map((e) => [e.Type, e.Action, e.Actor.Attributes.name])).toEqual([['secret', 'create', 'db-password']]);
    expect(eventLine(evs[0]!)).not.toContain(data);
  });

  test('a task write that leaves its state is no event', () => {
    expect(deriveEvents([{ kind: 'update', table: 'tasks', object: { ...task('running'), DesiredState: 'shutdown' } as Task, old: task('running'), index: 3 }], AT, () => 'web')).toEqual([]);
  });

  test('node update names what moved; clusters are no events', () => {
    const evs = deriveEvents([
      { kind: 'update', table: 'nodes', object: node('down', 'drain'), old: node('ready', 'active'), index: 4 },
      { kind: 'update', table: 'clusters', object: { ID: 'c', ...meta } as never, old: { ID: 'c', ...meta } as never, index: 4 },
    ], AT, () => undefined);
    expect(evs).toHaveLength(1);
    expect(evs[0]!.Actor.Attributes).toEqual({ name: 'host-a', 'state.old': 'ready', 'state.new': 'down', 'availability.old': 'active', 'availability.new': 'drain' });
  });

  test('a line is Docker JSON with an exact timeNano and no internal fields', () => {
    const [e] = deriveEvents([{ kind: 'create', table: 'services', object: svc(1), index: 1 }], '2026-01-02T03:04:05.678Z', () => undefined);
    const line = eventLine({ ...e!, timeNano: 1767323045678000001n });
    expect(line.endsWith('"timeNano":1767323045678000001}\n')).toBe(true);
    expect(Object.keys(JSON.parse(line))).toEqual(['Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
    expect(nanosOf('garbage')).toBe(0n);
  });
});
