import { describe, expect, test } from 'bun:test';
import { majorityIndex, quorumActive, quorumSize, voteResult } from './quorum.ts';

describe('quorum', () => {
  test('quorum size is a strict majority', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorumSize)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  test('majority index is the highest index acknowledged by a majority', () => {
    const acked = { a: 5, b: 3, c: 9, d: 1, e: 7 } as Record<string, number>;
    expect(majorityIndex(['a', 'b', 'c', 'd', 'e'], (id) => acked[id])).toBe(5);
    expect(majorityIndex(['a', 'b', 'c'], (id) => acked[id])).toBe(5);
    expect(majorityIndex(['a', 'b', 'c', 'd'], (id) => acked[id])).toBe(3);
    expect(majorityIndex(['c'], (id) => acked[id])).toBe(9);
    expect(majorityIndex([], () => 7)).toBe(0);
  });

  test('vote result: won with a majority of grants, lost once a majority is out of reach, else pending', () => {
    const voters = ['a', 'b', 'c', 'd', 'e'];
    const v = (entries: [string, boolean][]) => voteResult(voters, new Map(entries));
    expect(v([['a', true]])).toBe('pending');
    expect(v([['a', true], ['b', true], ['c', true]])).toBe('won');
    expect(v([['a', true], ['b', false], ['c', false]])).toBe('pending');
    expect(v([['a', true], ['b', false], ['c', false], ['d', false]])).toBe('lost');
    // Votes from non-voters do not count.
    expect(voteResult(['a', 'b', 'c'], new Map([['a', true], ['x', true], ['y', true]]))).toBe('pending');
  });

  test('quorum active counts a majority of active voters', () => {
    expect(quorumActive(['a', 'b', 'c'], (id) => id === 'a')).toBe(false);
    expect(quorumActive(['a', 'b', 'c'], (id) => id !== 'c')).toBe(true);
  });
});
