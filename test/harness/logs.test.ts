import { afterEach, expect, spyOn, test } from 'bun:test';
import { logsOnFailure, logTails, noteDisposed, noteStarted } from './logs.ts';

const daemon = (name: string, lines: number) => ({ name, output: Array.from({ length: lines }, (_, i) => `${name} line ${i + 1}`).join('\n') + '\n' });

const noted: { name: string; output: string }[] = [];
afterEach(() => {
  for (const d of noted.splice(0)) noteDisposed(d);
});

test('a tail is the last lines of each log, under its name', () => {
  const tail = logTails([daemon('m1', 50), { name: 'w1', output: '' }], 3);
  expect(tail).toBe('----- m1: last 3 lines of its log -----\nm1 line 48\nm1 line 49\nm1 line 50\n----- w1: last 3 lines of its log -----\n(nothing logged)');
});

test('a failing body prints the log tails of the daemons it started, then fails as it would have', async () => {
  const printed: string[] = [];
  const spy = spyOn(console, 'error').mockImplementation((...a: unknown[]) => void printed.push(a.join(' ')));
  try {
    const body = logsOnFailure(async () => {
      const d = daemon('m2', 5);
      noted.push(d);
      noteStarted(d);
      noteDisposed(d); // as `await using` does before the error reaches the wrapper
      throw new Error('waited too long');
    }, 2);
    await expect(body()).rejects.toThrow('waited too long');
  } finally {
    spy.mockRestore();
  }
  expect(printed).toHaveLength(1);
  expect(printed[0]).toContain('the test failed (waited too long)');
  expect(printed[0]).toContain('----- m2: last 2 lines of its log -----\nm2 line 4\nm2 line 5');
});

test('a passing body prints nothing', async () => {
  const spy = spyOn(console, 'error').mockImplementation(() => {});
  try {
    await logsOnFailure(async () => {
      const d = daemon('m3', 1);
      noted.push(d);
      noteStarted(d);
    })();
    expect(spy).not.toHaveBeenCalled();
  } finally {
    spy.mockRestore();
  }
});
