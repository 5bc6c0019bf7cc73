import { describe, expect, test } from 'bun:test';
import { CompactedError } from './errors.ts';
import { RaftLog } from './log.ts';
import { entry } from './node.test-helper.ts';
import { MemoryStorage } from './storage.ts';

function logWith(terms: number[], stableUpTo = terms.length): RaftLog {
  const s = new MemoryStorage();
  s.append(terms.slice(0, stableUpTo).map((t, i) => entry(i + 1, t)));
  const log = new RaftLog(s);
  if (stableUpTo < terms.length) log.append(terms.slice(stableUpTo).map((t, i) => entry(stableUpTo + i + 1, t)));
  return log;
}

describe('raft log', () => {
  test('terms and indexes span storage and the unstable tail', () => {
    const log = logWith([1, 1, 2, 3, 3], 3);
    expect(log.lastIndex()).toBe(5);
    expect([1, 2, 3, 4, 5].map((i) => log.term(i))).toEqual([1, 1, 2, 3, 3]);
    expect(log.term(6)).toBeUndefined();
    expect(log.unstableEntries().map((e) => e.index)).toEqual([4, 5]);
    expect(log.slice(2, 5).map((e) => e.index)).toEqual([2, 3, 4]);
  });

  test('findConflict returns the first new or conflicting index', () => {
    const log = logWith([1, 1, 2]);
    expect(log.findConflict([entry(1, 1), entry(2, 1)])).toBe(0);
    expect(log.findConflict([entry(2, 1), entry(3, 3)])).toBe(3);
    expect(log.findConflict([entry(3, 2), entry(4, 2)])).toBe(4);
  });

  test('findConflictByTerm finds the last index at or before the given one with a term no greater', () => {
    const log = logWith([1, 1, 2, 2, 4, 4]);
    expect(log.findConflictByTerm(6, 3)).toEqual({ index: 4, term: 2 });
    expect(log.findConflictByTerm(6, 4)).toEqual({ index: 6, term: 4 });
    expect(log.findConflictByTerm(4, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(6, 0)).toEqual({ index: 0, term: 0 });
  });

  test('maybeAppend truncates a conflicting suffix but refuses to touch committed entries', () => {
    const log = logWith([1, 1, 1, 1]);
    expect(log.maybeAppend(1, 1, 0, [entry(2, 2)])).toBe(2);
    expect(log.lastIndex()).toBe(2);
    log.commitTo(2);
    expect(() => log.maybeAppend(0, 0, 0, [entry(1, 5)])).toThrow();
    expect(log.maybeAppend(2, 9, 0, [])).toBeUndefined();
  });

  test('committed entries are handed out once (applying) and only up to the commit index', () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(2);
    expect(log.nextCommittedEnts().map((e) => e.index)).toEqual([1, 2]);
    log.acceptApplying(2);
    expect(log.hasNextCommittedEnts()).toBe(false);
    log.commitTo(3);
    expect(log.nextCommittedEnts().map((e) => e.index)).toEqual([3]);
  });

  test('reading below the first index reports compaction', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    s.compact(2);
    const log = new RaftLog(s);
    expect(log.firstIndex()).toBe(3);
    expect(log.term(2)).toBe(1);
    expect(log.term(1)).toBeUndefined();
    expect(() => log.slice(1, 3)).toThrow(CompactedError);
  });

  test('isUpToDate compares last term first, then length (§5.4.1)', () => {
    const log = logWith([1, 2, 2]);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });
});
