import { expect, test } from 'bun:test';
import { renderEventLine } from './events.ts';

const line = '{"Type":"service","Action":"update","Actor":{"ID":"abc","Attributes":{"replicas.old":"1","name":"web","replicas.new":"3"}},"scope":"swarm","time":1700000000,"timeNano":1700000000123456789}';

test('an event reads as docker events prints it, nanoseconds exact', () => {
  expect(renderEventLine(line, undefined)).toBe('2023-11-14T22:13:20.123456789Z service update abc (name=web, replicas.new=3, replicas.old=1)\n');
  expect(renderEventLine(line, 'json')).toBe(`${line}\n`);
});

test("the daemon's last line about a lagging client is an error", () => {
  expect(() => renderEventLine('{"error":"this client fell more than 1000 events behind"}', undefined)).toThrow(/fell more than 1000/);
});
