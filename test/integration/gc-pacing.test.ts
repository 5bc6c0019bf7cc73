/**
 * The compiled daemon runs with JavaScriptCore's collector paced for 2 GiB and its FTL tier later
 * (src/lib/gc-pacing.ts): it starts itself again with the options in its environment, as the same
 * process, and what it runs does not inherit them. Over its memory ceiling it collects
 * (src/daemon/memory-ceiling.ts).
 */
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { tempDaemon, waitFor } from '../harness/index.ts';

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

test('the daemon runs with its collector paced; a process task does not inherit the setting', async () => {
  await using d = await tempDaemon();
  await d.start();
  // The environment the daemon's runtime started with (the second start's, same pid).
  expect(environ(d.proc!.pid)).toContain(`BUN_JSC_forceRAMSize=${2 * 1024 ** 3}`);
  expect(environ(d.proc!.pid)).toContain('BUN_JSC_thresholdForFTLOptimizeAfterWarmUp=1000000');
  // A duration of its own, to find this task's process among any other sleeps on the host.
  await d.ok('service', 'create', '--name', 'env', '--replicas', '1', '--', '/bin/sleep', '3599.25');
  await waitFor('a running task', async () => (await d.running('env')).length === 1);
  const pid = await waitFor('the task\'s process', () => Number(Bun.spawnSync(['pgrep', '-f', 'sleep 3599.25']).stdout.toString().trim().split('\n')[0]) || null);
  expect(environ(pid!).filter((e) => e.startsWith('BUN_JSC_') || e.startsWith('SHOAL_GC'))).toEqual([]);
});

/** `process.env` with `extra` while `fn` runs (the harness starts daemons with the test's environment). */
async function withEnv<T>(extra: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(extra).map((k) => [k, process.env[k]]));
  Object.assign(process.env, extra);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('over its memory ceiling the daemon collects fully and says so; a ceiling that is not a number is refused', async () => {
  // The ceiling (src/daemon/memory-ceiling.ts) is 40% of the paced 2 GiB by default; 1 MiB is
  // under any daemon's RSS, so this one collects at once and logs what it left.
  await using d = await tempDaemon();
  await withEnv({ SHOAL_MEMORY_CEILING_MIB: '1' }, () => d.start());
  const line = await waitFor('the collection\'s log line', () => /memory: RSS (\d+) MiB over the ceiling of 1 MiB; a full collection left (\d+) MiB/.exec(d.output));
  expect(Number(line![1])).toBeGreaterThan(1);
  // Still serving after it.
  expect((await d.api('/_ping')).ok).toBe(true);

  await using bad = await tempDaemon();
  const err = await withEnv({ SHOAL_MEMORY_CEILING_MIB: '1G' }, () => bad.start().then(() => null, (e: Error) => e));
  expect(err?.message).toContain('SHOAL_MEMORY_CEILING_MIB must be a number of MiB (0 for no ceiling), not "1G"');
});
