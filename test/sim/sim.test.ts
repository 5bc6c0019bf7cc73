import { describe, expect, test } from 'bun:test';
import { failingSeedRuns } from './seed-workers.ts';
import { replayCommand, runSeed } from './cluster.ts';

const SEEDS = 2000;
const FIRST_SEED = 1;

describe('deterministic simulation', () => {
  test('a seed replays exactly', () => {
    const a = runSeed({ seed: 7 });
    const b = runSeed({ seed: 7 });
    expect(a.ok).toBe(true);
    expect({ ...b }).toEqual({ ...a });
    expect(a.committed).toBeGreaterThan(0);
    expect(a.ops).toBeGreaterThan(0);
  });

  test(
    `${SEEDS} seeds keep election safety, log matching, leader completeness, state machine safety and linearizability`,
    async () => {
      const failures = await failingSeedRuns('test/sim/cli.ts', SEEDS, FIRST_SEED);
      if (failures.length) console.error(failures.join('\n'));
      expect(failures).toEqual([]);
    },
    240_000,
  );

  test('the replay command names the seed', () => {
    expect(replayCommand(42)).toBe('npm run sim -- --seeds 1 --seed 42');
  });
});
