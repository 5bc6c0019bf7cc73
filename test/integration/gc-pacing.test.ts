/**
 * The compiled daemon runs with JavaScriptCore's collector paced for 2 GiB (src/lib/gc-pacing.ts):
 * it starts itself again with the option in its environment, as the same process, and what it runs
 * does not inherit the option.
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
  // A duration of its own, to find this task's process among any other sleeps on the host.
  await d.ok('service', 'create', '--name', 'env', '--replicas', '1', '--', '/bin/sleep', '3599.25');
  await waitFor('a running task', async () => (await d.running('env')).length === 1);
  const pid = await waitFor('the task\'s process', () => Number(Bun.spawnSync(['pgrep', '-f', 'sleep 3599.25']).stdout.toString().trim().split('\n')[0]) || null);
  expect(environ(pid!).filter((e) => e.startsWith('BUN_JSC_') || e.startsWith('SHOAL_GC'))).toEqual([]);
});
