import { expect, test } from 'bun:test';
import type { LogLine } from './contract.ts';
import { pollUntil, selectLines } from './logs.ts';

const line = (time: number): LogLine => ({ stream: 'stdout', time, line: String(time) });

test('selectLines applies since, then tail', () => {
  const all = [1, 2, 3, 4, 5].map(line);
  expect(selectLines(all, {})).toEqual(all);
  expect(selectLines(all, { tail: 2 }).map((l) => l.time)).toEqual([4, 5]);
  expect(selectLines(all, { since: 2, tail: 10 }).map((l) => l.time)).toEqual([2, 3, 4, 5]);
  expect(selectLines(all, { since: 2, tail: 1 }).map((l) => l.time)).toEqual([5]);
  expect(selectLines(all, { tail: 0 })).toEqual([]);
});

test('pollUntil returns the value, gives up at its bound, and rejects on abort', async () => {
  let n = 0;
  expect(await pollUntil(() => (++n >= 3 ? n : undefined), { intervalMs: 1, timeoutMs: 5_000 })).toBe(3);
  expect(await pollUntil(() => undefined, { intervalMs: 1, timeoutMs: 10 })).toBeUndefined();
  const ac = new AbortController();
  const p = pollUntil(() => undefined, { intervalMs: 1, timeoutMs: 60_000, signal: ac.signal });
  ac.abort(new Error('stop'));
  await expect(p).rejects.toThrow('stop');
});
