import { describe, expect, test } from 'bun:test';
import { cpus } from 'node:os';
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
      // Split over worker processes (one per core, at most 4); each prints failures with their replay command.
      const workers = Math.max(1, Math.min(4, cpus().length));
      const per = Math.ceil(SEEDS / workers);
      const runs = Array.from({ length: workers }, (_, w) => {
        const from = FIRST_SEED + w * per;
        const count = Math.min(per, FIRST_SEED + SEEDS - from);
        const proc = Bun.spawn([process.execPath, 'test/sim/cli.ts', '--seeds', String(count), '--seed', String(from)], {
          cwd: `${import.meta.dir}/../..`,
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
    240_000,
  );

  test('the replay command names the seed', () => {
    expect(replayCommand(42)).toBe('npm run sim -- --seeds 1 --seed 42');
  });
});
