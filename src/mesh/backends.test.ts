import { describe, expect, test } from 'bun:test';
import { BackendLoad, BackendTable, type Backend } from './backends.ts';

const b = (port: number, local = false, healthy = true): Backend => ({ addr: '10.0.0.1', port, local, healthy });

function setup(list: Backend[]) {
  let now = 0;
  const load = new BackendLoad(1000, () => now);
  const table = new BackendTable(load);
  table.replace(list);
  return { load, table, advance: (ms: number) => (now += ms) };
}

describe('backend choice', () => {
  test('equal loads come out round-robin', () => {
    const { table } = setup([b(1), b(2), b(3)]);
    const ports = Array.from({ length: 9 }, () => table.pick()!.port);
    expect(ports.filter((p) => p === 1).length).toBe(3);
    expect(ports.filter((p) => p === 2).length).toBe(3);
    expect(new Set(ports.slice(0, 3)).size).toBe(3);
  });

  test('the least loaded backend wins', () => {
    const { table, load } = setup([b(1), b(2), b(3)]);
    load.acquire('10.0.0.1:1');
    load.acquire('10.0.0.1:1');
    load.acquire('10.0.0.1:2');
    for (let i = 0; i < 5; i++) expect(table.pick()!.port).toBe(3);
    load.release('10.0.0.1:1');
    load.release('10.0.0.1:1');
    load.acquire('10.0.0.1:3');
    expect(table.pick()!.port).toBe(1);
  });

  test('local first, then remote; unhealthy never', () => {
    const { table } = setup([b(1, false), b(2, true), b(3, true, false)]);
    for (let i = 0; i < 4; i++) expect(table.pick()!.port).toBe(2);
    expect(table.pick(new Set(['10.0.0.1:2']))!.port).toBe(1);
    expect(table.pick(new Set(['10.0.0.1:2', '10.0.0.1:1']))).toBeNull();
    expect(table.size).toBe(2);
  });

  test('a failed backend is benched for the cool-down, used only when nothing else is left', () => {
    const { table, load, advance } = setup([b(1, true), b(2, false)]);
    load.markFailed('10.0.0.1:1');
    expect(table.pick()!.port).toBe(2);
    expect(table.pick(new Set(['10.0.0.1:2']))!.port).toBe(1);
    advance(1001);
    expect(table.pick()!.port).toBe(1);
  });
});
