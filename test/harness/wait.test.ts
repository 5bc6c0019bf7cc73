import { expect, test } from 'bun:test';
import { waitFor } from './wait.ts';

test('waitFor returns the first truthy answer', async () => {
  let n = 0;
  expect(await waitFor('the third poll', () => (++n === 3 ? 'three' : null), 5_000, 1)).toBe('three');
});

test('past its bound, waitFor names what it waited for and the last answer (an error too)', async () => {
  await expect(waitFor('nothing ever', () => false, 30, 5)).rejects.toThrow('timed out after 30 ms waiting for nothing ever (last: false)');
  await expect(waitFor('a failing check', () => { throw new Error('no socket'); }, 30, 5)).rejects.toThrow('waiting for a failing check (last: no socket)');
});
