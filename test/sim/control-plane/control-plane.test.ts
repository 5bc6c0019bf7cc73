import { describe, expect, test } from 'bun:test';
import { failingSeedRuns } from '../seed-workers.ts';
import { replayCommand, runControlPlaneSeed } from './run.ts';

const SEEDS = 50;
const FIRST_SEED = 1;

describe('control-plane simulation', () => {
  test('a seed replays exactly', async () => {
    const a = await runControlPlaneSeed({ seed: 5, chaosMs: 20_000 });
    const b = await runControlPlaneSeed({ seed: 5, chaosMs: 20_000 });
    expect(a.ok).toBe(true);
    expect(b).toEqual(a);
    expect(a.tally.creates).toBeGreaterThan(0);
    expect(a.convergedAfterMs).toBeDefined();
  });

  test(
    `${SEEDS} seeds keep the replica bound, one node per task, drained nodes empty, and converge after healing`,
    async () => {
      const failures = await failingSeedRuns('test/sim/control-plane/cli.ts', SEEDS, FIRST_SEED);
      if (failures.length) console.error(failures.join('\n'));
      expect(failures).toEqual([]);
    },
    600_000,
  );

  test('the replay command names the seed', () => {
    expect(replayCommand(42)).toBe('npm run sim -- --control-plane --seeds 1 --seed 42');
  });
});
