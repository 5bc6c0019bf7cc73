import { describe, expect, test } from 'bun:test';
import { Inflights, Progress, ProgressTracker } from './progress.ts';

describe('inflights', () => {
  test('bounded window freed by acknowledgement', () => {
    const f = new Inflights(3);
    f.add(2, 10);
    f.add(4, 10);
    f.add(6, 10);
    expect(f.full()).toBe(true);
    expect(() => f.add(8, 10)).toThrow();
    f.freeLE(4);
    expect(f.count).toBe(1);
    expect(f.bytes).toBe(10);
    expect(f.full()).toBe(false);
    f.freeFirstOne();
    expect(f.count).toBe(0);
  });
});

describe('progress', () => {
  test('probe sends one append until a response; replicate streams optimistically within the window', () => {
    const p = new Progress(5, 2, false);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(3, 30);
    expect(p.isPaused()).toBe(true);
    expect(p.maybeUpdate(7)).toBe(true);
    p.becomeReplicate();
    expect(p.next).toBe(8);
    p.sentEntries(2, 20);
    expect(p.next).toBe(10);
    p.sentEntries(2, 20);
    expect(p.next).toBe(12);
    expect(p.isPaused()).toBe(true);
    p.maybeUpdate(9);
    p.inflights.freeLE(9);
    expect(p.isPaused()).toBe(false);
  });

  test('a rejection in probe state moves next to the hint; stale rejections are ignored', () => {
    const p = new Progress(10, 4, false);
    expect(p.maybeDecrTo(5, 3)).toBe(false); // not the index we probed
    expect(p.maybeDecrTo(9, 3)).toBe(true);
    expect(p.next).toBe(4);
    p.match = 5;
    p.next = 10;
    expect(p.maybeDecrTo(9, 2)).toBe(true);
    expect(p.next).toBe(6); // never below match + 1
  });

  test('a rejection in replicate state falls back to match + 1', () => {
    const p = new Progress(1, 4, false);
    p.maybeUpdate(5);
    p.becomeReplicate();
    p.sentEntries(3, 0);
    expect(p.maybeDecrTo(4, 0)).toBe(false);
    expect(p.maybeDecrTo(8, 0)).toBe(true);
    expect(p.next).toBe(6);
  });

  test('snapshot state pauses replication; leaving it resumes after the snapshot', () => {
    const p = new Progress(1, 4, false);
    p.becomeSnapshot(20);
    expect(p.isPaused()).toBe(true);
    p.becomeProbe();
    expect(p.next).toBe(21);
  });
});

describe('progress tracker', () => {
  test('learners replicate but neither vote nor count for commit', () => {
    const t = new ProgressTracker(8);
    t.setConf({ voters: ['a', 'b', 'c'], learners: ['d'] }, 1);
    for (const [id, m] of [['a', 5], ['d', 5], ['b', 1], ['c', 1]] as const) t.progress.get(id)!.match = m;
    expect(t.committed()).toBe(1);
    t.progress.get('b')!.match = 5;
    expect(t.committed()).toBe(5);
    expect(t.progress.get('d')!.isLearner).toBe(true);
    t.setConf({ voters: ['a', 'b', 'c', 'd'], learners: [] }, 1);
    expect(t.progress.get('d')!.isLearner).toBe(false);
    expect(t.progress.get('d')!.match).toBe(5);
    t.setConf({ voters: ['a', 'b', 'd'], learners: [] }, 1);
    expect(t.isMember('c')).toBe(false);
    expect(t.confState()).toEqual({ voters: ['a', 'b', 'd'], learners: [] });
  });
});
