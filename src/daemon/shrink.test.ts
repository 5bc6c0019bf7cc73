import { expect, test } from 'bun:test';
import { waitFor } from '../../test/harness/wait.ts';
import { idleShrinker } from './shrink.ts';

test('shrinks once after the last of several settle calls, then once more later, then no more', async () => {
  let shrinks = 0;
  const s = idleShrinker(20, () => shrinks++, 60_000);
  s.settled();
  s.settled();
  s.settled();
  await waitFor('a shrink', () => shrinks > 0, 5_000);
  // The later shrink is a minute away: after another shrinker's first, `s` has shrunk once.
  let other = 0;
  idleShrinker(20, () => other++).settled();
  await waitFor('the other shrink', () => other > 0, 5_000);
  expect(shrinks).toBe(1);
  s.stop();

  let twice = 0;
  const t = idleShrinker(5, () => twice++, 5);
  t.settled();
  await waitFor('the later shrink', () => twice >= 2, 5_000);
  // A third would come 5 ms after the second if it were periodic: a 50 ms shrinker started now shrinks after that.
  let marker = 0;
  idleShrinker(50, () => marker++).settled();
  await waitFor('the marker shrink', () => marker > 0, 5_000);
  expect(twice).toBe(2);
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
