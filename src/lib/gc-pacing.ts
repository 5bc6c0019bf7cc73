/**
 * How JavaScriptCore collects and compiles a daemon's code: settings for a server, not for a script.
 *
 * The collector. JavaScriptCore lets a heap grow between full collections by a factor it picks
 * from the machine's RAM: up to twice its size while it is under a quarter of the RAM, 1.5× under
 * half, 1.24× above. On a 24 GiB host a leader holding 100k tasks (about 700 MiB of RSS after a
 * collection; 200 MiB of it live heap) was therefore let grow to 1.2 GiB during a burst of
 * placements before it collected (docs/scale.md, stop 30), which is garbage, and RSS, a manager
 * does not need. The daemon tells JavaScriptCore the RAM is 2 GiB (or the machine's, if less), with
 * its `forceRAMSize` option, so a heap over 1 GiB grows 1.24× and one of 512 MiB-1 GiB 1.5×; an idle
 * daemon's heap of a few tens of MiB is paced as before.
 *
 * The optimizing compiler. A function reaches the FTL, JavaScriptCore's last tier, after ten
 * times the executions the default asks (`thresholdForFTLOptimizeAfterWarmUp`, 100,000 → 1,000,000).
 * A leader's first burst of 10,000 placements compiled ~200 functions with the FTL, ~1.1-1.3 s of
 * compiler time on a 2-core host; with the higher threshold it placed a median 16,056 tasks a
 * second against 13,404 (10 runs each, interleaved), its CPU for the burst 0.90-1.08 s in 9 runs of
 * 10 against 1.08-1.41 s (docs/scale.md, stop 34).
 * Code that stays hot (a 90k burst, a long-lived leader) still gets there.
 *
 * Both are read once, when the runtime starts, from the environment: the compiled daemon executes
 * itself again with them set (execve: the same process id, arguments and descriptors), and takes
 * them out of its environment once started, so the commands it runs do not inherit them. An
 * operator who sets BUN_JSC_forceRAMSize tunes the runtime themselves: nothing is set then. One who
 * sets the FTL threshold keeps their own value.
 */
import { totalmem } from 'node:os';

export const JSC_RAM_ENV = 'BUN_JSC_forceRAMSize';
export const JSC_FTL_ENV = 'BUN_JSC_thresholdForFTLOptimizeAfterWarmUp';
/** Set on the second start, so that it happens once: the names of the settings it added. */
const PACED_ENV = 'SHOAL_GC_PACED';
export const DAEMON_RAM_BYTES = 2 * 1024 ** 3;
export const DAEMON_FTL_THRESHOLD = 1_000_000;

/** The environment for the daemon's second start, or null when it starts as it is. */
export function pacedEnv(argv: readonly string[], env: NodeJS.ProcessEnv, compiled: boolean, ram = totalmem()): NodeJS.ProcessEnv | null {
  if (argv[0] !== 'daemon' || !compiled || env[PACED_ENV] !== undefined || env[JSC_RAM_ENV] !== undefined) return null;
  const added: Record<string, string> = { [JSC_RAM_ENV]: String(Math.min(ram, DAEMON_RAM_BYTES)) };
  if (env[JSC_FTL_ENV] === undefined) added[JSC_FTL_ENV] = String(DAEMON_FTL_THRESHOLD);
  return { ...env, ...added, [PACED_ENV]: Object.keys(added).join(',') };
}

/**
 * Called first thing by main: starts the compiled daemon again with its collector paced (above),
 * or, in the daemon so started, takes the settings out of the environment its children inherit.
 */
export function paceCollector(argv: readonly string[]): void {
  const added = process.env[PACED_ENV];
  if (added !== undefined) {
    delete process.env[PACED_ENV];
    for (const name of added.split(',')) if (name.startsWith('BUN_JSC_')) delete process.env[name];
    return;
  }
  // Only the compiled executable (`bun src/main.ts` would need its script path again).
  const compiled = (process.argv[1] ?? '').startsWith('/$bunfs/');
  const env = pacedEnv(argv, process.env, compiled);
  if (!env || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...argv], env);
}
