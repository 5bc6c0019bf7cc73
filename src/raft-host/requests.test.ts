import { expect, test } from 'bun:test';
import { Waiters } from './requests.ts';

test('settleBelow settles exactly the waiters older than the seq, whatever was settled before, in order', () => {
  const w = new Waiters();
  const seen: string[] = [];
  for (const seq of [1, 2, 3, 4, 5]) w.add(seq, 'p', 100, (err) => seen.push(`${seq}:${err ? err.message : 'ok'}`));
  w.settle(2, null);
  w.settleBelow(1, () => new Error('lost')); // nothing older than 1
  w.settleBelow(4, () => new Error('lost'));
  expect(seen).toEqual(['2:ok', '1:lost', '3:lost']);
  expect(w.seqs()).toEqual([4, 5]);
  w.settle(4, null);
  w.settleBelow(5, () => new Error('lost'));
  expect(w.seqs()).toEqual([5]);
  w.settleBelow(6, () => new Error('lost'));
  expect(seen).toEqual(['2:ok', '1:lost', '3:lost', '4:ok', '5:lost']);
  expect(w.size).toBe(0);
});

test('waiters settled one by one (never by settleBelow) keep the bookkeeping bounded and correct', () => {
  const w = new Waiters();
  for (let seq = 1; seq <= 50_000; seq++) {
    w.add(seq, 'r', 100, () => {});
    if (seq > 3) w.settle(seq - 3, null);
  }
  expect(w.seqs()).toEqual([49_998, 49_999, 50_000]);
  const seen: number[] = [];
  w.add(50_001, 'r', 100, () => seen.push(50_001));
  w.settleBelow(50_000, () => new Error('lost'));
  expect(w.seqs()).toEqual([50_000, 50_001]);
  expect((w as unknown as { order: number[] }).order.length).toBeLessThan(2_000);
});
