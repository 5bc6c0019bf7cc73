import { expect, test } from 'bun:test';
import { waitFor } from '../../test/harness/wait.ts';
import { BUSY_SHARE, idleShrinker } from './shrink.ts';

/** A process that uses no CPU, probed over 2 ms. */
const quiet = { cpuMs: () => 0, probeMs: 2 };

test('shrinks once after the last of several settle calls, then once more later, then no more', async () => {
  let shrinks = 0;
  const s = idleShrinker({ settleMs: 20, shrink: () => shrinks++, laterMs: 60_000, ...quiet });
  s.settled();
  s.settled();
  s.settled();
  await waitFor('a shrink', () => shrinks > 0, 5_000);
  // The later shrink is a minute away: after another shrinker's first, `s` has shrunk once.
  let other = 0;
  idleShrinker({ settleMs: 20, shrink: () => other++, ...quiet }).settled();
  await waitFor('the other shrink', () => other > 0, 5_000);
  expect(shrinks).toBe(1);
  s.stop();

  let twice = 0;
  const t = idleShrinker({ settleMs: 5, shrink: () => twice++, laterMs: 5, ...quiet });
  t.settled();
  await waitFor('the later shrink', () => twice >= 2, 5_000);
  // A third would come 5 ms after the second if it were periodic: a 50 ms shrinker started now shrinks after that.
  let marker = 0;
  idleShrinker({ settleMs: 50, shrink: () => marker++, ...quiet }).settled();
  await waitFor('the marker shrink', () => marker > 0, 5_000);
  expect(twice).toBe(2);
});

test('a shrink waits while the process is busy, and happens once it is quiet', async () => {
  let shrinks = 0;
  let probes = 0;
  let busy = true;
  let used = 0;
  // Busy: each reading has gone up by more than BUSY_SHARE of the wall time since any earlier one.
  const cpuMs = () => {
    probes++;
    if (busy) used += 1_000_000 * BUSY_SHARE;
    return used;
  };
  const s = idleShrinker({ settleMs: 5, shrink: () => shrinks++, laterMs: 60_000, cpuMs, probeMs: 2 });
  s.settled();
  await waitFor('three busy probes', () => probes >= 6, 5_000);
  expect(shrinks).toBe(0);
  busy = false;
  await waitFor('the shrink once quiet', () => shrinks === 1, 5_000);
  s.stop();
});

test('stop cancels a pending shrink', async () => {
  let shrinks = 0;
  const s = idleShrinker({ settleMs: 10, shrink: () => shrinks++, ...quiet });
  s.settled();
  s.stop();
  // Another shrinker with the same delay, started after: once it has shrunk, the stopped one would have too.
  let other = 0;
  const o = idleShrinker({ settleMs: 10, shrink: () => other++, ...quiet });
  o.settled();
  await waitFor('the other shrink', () => other > 0, 5_000);
  expect(shrinks).toBe(0);
});

test('Bun.shrink is there (a Bun upgrade that drops it would silently lose the saving)', () => {
  expect(typeof (Bun as unknown as { shrink?: unknown }).shrink).toBe('function');
});
