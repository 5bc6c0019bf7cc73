import { describe, expect, test } from 'bun:test';
import { cpus } from 'node:os';
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
      // Split over worker processes (one per core, at most 4); each prints failures with their replay command.
      const workers = Math.max(1, Math.min(4, cpus().length));
      const per = Math.ceil(SEEDS / workers);
      const runs = Array.from({ length: workers }, (_, w) => {
        const from = FIRST_SEED + w * per;
        const count = Math.min(per, FIRST_SEED + SEEDS - from);
        const proc = Bun.spawn([process.execPath, 'test/sim/control-plane/cli.ts', '--seeds', String(count), '--seed', String(from)], {
          cwd: `${import.meta.dir}/../../..`,
          stdout: 'pipe',
          stderr: 'pipe',
        });
        return Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      });
      const results = await Promise.all(runs);
      const failures = results.filter(([code]) => code !== 0).map(([, out, err]) => `${err}\n${out}`);
      if (failures.length) console.error(failures.join('\n'));
      expect(failures).toEqual([]);
    },
    600_000,
  );

  test('the replay command names the seed', () => {
    expect(replayCommand(42)).toBe('npm run sim -- --control-plane --seeds 1 --seed 42');
  });
});
