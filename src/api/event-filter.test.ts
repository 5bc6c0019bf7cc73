import { describe, expect, test } from 'bun:test';
import type { SwarmEvent } from './event-derive.ts';
import { eventQuery, parseEventTime } from './event-filter.ts';

const ev = (Type: SwarmEvent['Type'], Action: string, ID: string, Attributes: Record<string, string>, labels?: Record<string, string>): SwarmEvent =>
  ({ Type, Action, Actor: { ID, Attributes }, scope: 'swarm', time: 1, timeNano: 1n, labels });
const web = ev('service', 'create', 'abc123', { name: 'web' }, { tier: 'front' });
const db = ev('service', 'update', 'def456', { name: 'db' });
const task = ev('task', 'running', 't1', { name: 'web.1', service: 'web', 'service.id': 'abc123', node: 'node1' });
const nodeEv = ev('node', 'update', 'node1', { name: 'host-a' });
const matches = (filters: object, e: SwarmEvent) => eventQuery({ filters: JSON.stringify(filters) }).match(e);

describe('event filters', () => {
  test('type and event', () => {
    expect(matches({ type: ['service'] }, web)).toBe(true);
    expect(matches({ type: ['task'] }, web)).toBe(false);
    expect(matches({ type: ['task', 'service'], event: ['running'] }, task)).toBe(true);
    expect(matches({ event: ['remove'] }, web)).toBe(false);
  });
  test('service by name, id or prefix; a task by its service; other types excluded', () => {
    expect(matches({ service: ['web'] }, web)).toBe(true);
    expect(matches({ service: ['abc'] }, web)).toBe(true);
    expect(matches({ service: ['web'] }, db)).toBe(false);
    expect(matches({ service: ['web'] }, task)).toBe(true);
    expect(matches({ service: ['web'] }, nodeEv)).toBe(false);
  });
  test('node matches node events and the tasks on it', () => {
    expect(matches({ node: ['host-a'] }, nodeEv)).toBe(true);
    expect(matches({ node: ['node1'] }, task)).toBe(true);
    expect(matches({ node: ['node2'] }, task)).toBe(false);
  });
  test('label on the object labels, key or key=value', () => {
    expect(matches({ label: ['tier'] }, web)).toBe(true);
    expect(matches({ label: ['tier=front'] }, web)).toBe(true);
    expect(matches({ label: ['tier=back'] }, web)).toBe(false);
    expect(matches({ label: ['tier'] }, db)).toBe(false);
  });
  test('bad input is refused naming it', () => {
    expect(() => eventQuery({ filters: '{bad' })).toThrow(/filters: malformed JSON/);
    expect(() => eventQuery({ filters: '{"colour":["red"]}' })).toThrow(/invalid filter "colour"/);
    expect(() => eventQuery({ filters: '{"container":["x"]}' })).toThrow(/"container" is not supported/);
    expect(() => eventQuery({ filters: '{"type":["container"]}' })).toThrow(/invalid type "container"/);
    expect(() => eventQuery({ since: 'yesterday' })).toThrow(/since="yesterday"/);
    expect(() => eventQuery({ since: '20', until: '10' })).toThrow(/until .* is before since/);
  });
  test('times: seconds with nanos, RFC 3339', () => {
    expect(parseEventTime('since', '1700000000.000000001')).toBe(1700000000000000001n);
    expect(parseEventTime('since', '1700000000.5')).toBe(1700000000500000000n);
    expect(parseEventTime('since', '0')).toBe(0n);
    expect(parseEventTime('until', '2023-11-14T22:13:20Z')).toBe(1700000000000000000n);
  });
});
