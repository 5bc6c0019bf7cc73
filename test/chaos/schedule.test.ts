import { describe, expect, test } from 'bun:test';
import { arrange, FAULT_KINDS, faultSchedule, pick } from './schedule.ts';

describe('fault schedule', () => {
  test('a seed names one schedule; another seed another', () => {
    const a = faultSchedule({ seed: 7, durationMs: 60_000 });
    expect(faultSchedule({ seed: 7, durationMs: 60_000 })).toEqual(a);
    expect(faultSchedule({ seed: 8, durationMs: 60_000 })).not.toEqual(a);
  });

  test('faults are sequential, bounded, within the duration, and every kind comes before any repeats', () => {
    const fs = faultSchedule({ seed: 3, durationMs: 120_000 });
    for (let i = 1; i < fs.length; i++) expect(fs[i]!.at).toBeGreaterThanOrEqual(fs[i - 1]!.at + fs[i - 1]!.holdMs);
    for (const f of fs) {
      expect(f.at).toBeLessThan(120_000);
      expect(f.holdMs).toBeGreaterThanOrEqual(3_000);
      expect(f.holdMs).toBeLessThanOrEqual(8_000);
      if (f.kind === 'netem') expect(f.netem!.lossPct).toBeGreaterThan(0);
    }
    expect(new Set(fs.slice(0, FAULT_KINDS.length).map((f) => f.kind)).size).toBe(FAULT_KINDS.length);
  });

  test('kinds can be left out; bad options are refused naming the option', () => {
    expect(faultSchedule({ seed: 1, durationMs: 60_000, without: ['disk-full'] }).some((f) => f.kind === 'disk-full')).toBe(false);
    expect(() => faultSchedule({ seed: 1.5, durationMs: 1 })).toThrow('seed');
    expect(() => faultSchedule({ seed: 1, durationMs: 0 })).toThrow('durationMs');
    expect(() => faultSchedule({ seed: 1, durationMs: 10, without: FAULT_KINDS })).toThrow('without');
  });

  test('pick and arrange use the picks they are given', () => {
    expect(pick(['a', 'b', 'c'], 0)).toBe('a');
    expect(pick(['a', 'b', 'c'], 0.999)).toBe('c');
    expect(() => pick([], 0.5)).toThrow('nothing');
    const order = arrange([1, 2, 3, 4, 5], [0.1, 0.9, 0.5]);
    expect([...order].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(arrange([1, 2, 3, 4, 5], [0.1, 0.9, 0.5])).toEqual(order);
  });
});
