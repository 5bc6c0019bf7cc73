/**
 * Runs a simulator's seeds split over worker processes (one per core, at most 4), each its CLI
 * (`--seeds N --seed S`), which prints every failure with its replay command. Returns the outputs
 * of the processes that failed (empty when every seed passed).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';

export async function failingSeedRuns(cli: string, seeds: number, firstSeed: number): Promise<string[]> {
  const workers = Math.max(1, Math.min(4, cpus().length));
  const per = Math.ceil(seeds / workers);
  const runs = Array.from({ length: workers }, (_, w) => {
    const from = firstSeed + w * per;
    const count = Math.min(per, firstSeed + seeds - from);
    const proc = Bun.spawn([process.execPath, cli, '--seeds', String(count), '--seed', String(from)], {
      cwd: join(import.meta.dir, '..', '..'),
      stdout: 'pipe',
      stderr: 'pipe',
    });
    return Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  });
  const results = await Promise.all(runs);
  return results.filter(([code]) => code !== 0).map(([, out, err]) => `${err}\n${out}`);
}
