import { expect, test } from 'bun:test';
import { waitFor } from '../../test/harness/wait.ts';
import { idleShrinker } from './shrink.ts';

test('shrinks once after the last of several settle calls', async () => {
  let shrinks = 0;
  const s = idleShrinker(20, () => shrinks++);
  s.settled();
  s.settled();
  s.settled();
  await waitFor('a shrink', () => shrinks > 0, 5_000);
  const later = idleShrinker(20, () => shrinks++);
  later.settled();
  await waitFor('the second shrinker\'s shrink', () => shrinks > 1, 5_000);
  expect(shrinks).toBe(2);
});

test('stop cancels a pending shrink', async () => {
  let shrinks = 0;
  const s = idleShrinker(10, () => shrinks++);
  s.settled();
  s.stop();
  // Another shrinker with the same delay, started after: once it has shrunk, the stopped one would have too.
  let other = 0;
  const o = idleShrinker(10, () => other++);
  o.settled();
  await waitFor('the other shrink', () => other > 0, 5_000);
  expect(shrinks).toBe(0);
});

test('Bun.shrink is there (a Bun upgrade that drops it would silently lose the saving)', () => {
  expect(typeof (Bun as unknown as { shrink?: unknown }).shrink).toBe('function');
});
