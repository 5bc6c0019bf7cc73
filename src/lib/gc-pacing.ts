/**
 * How often JavaScriptCore collects a daemon's heap.
 *
 * JavaScriptCore lets a heap grow between full collections by a factor it picks from the machine's
 * RAM: up to twice its size while it is under a quarter of the RAM, 1.5× under half, 1.24× above.
 * On a 24 GiB host a leader holding 100k tasks (about 700 MiB of RSS after a collection) was
 * therefore let grow to 1.2 GiB during a burst of placements before it collected (docs/scale.md,
 * stop 30), which is garbage, and RSS, a manager does not need. The daemon tells JavaScriptCore the RAM is 2 GiB
 * (or the machine's, if less), with its `forceRAMSize` option, so a heap over 1 GiB grows 1.24× and
 * one of 512 MiB-1 GiB 1.5×; an idle daemon's heap of a few tens of MiB is paced as before.
 *
 * The option is read once, when the runtime starts, from the environment: the compiled daemon
 * executes itself again with it set (execve: the same process id, arguments and descriptors), and
 * takes it out of its environment once started, so the commands it runs do not inherit it. An
 * operator who sets BUN_JSC_forceRAMSize keeps their own value.
 */
import { totalmem } from 'node:os';

export const JSC_RAM_ENV = 'BUN_JSC_forceRAMSize';
/** Set on the second start, so that it happens once. */
const PACED_ENV = 'SHOAL_GC_PACED';
export const DAEMON_RAM_BYTES = 2 * 1024 ** 3;

/** The environment for the daemon's second start, or null when it starts as it is. */
export function pacedEnv(argv: readonly string[], env: NodeJS.ProcessEnv, compiled: boolean, ram = totalmem()): NodeJS.ProcessEnv | null {
  if (argv[0] !== 'daemon' || !compiled || env[PACED_ENV] !== undefined || env[JSC_RAM_ENV] !== undefined) return null;
  return { ...env, [JSC_RAM_ENV]: String(Math.min(ram, DAEMON_RAM_BYTES)), [PACED_ENV]: '1' };
}

/**
 * Called first thing by main: starts the compiled daemon again with its collector paced (above),
 * or, in the daemon so started, takes the settings out of the environment its children inherit.
 */
export function paceCollector(argv: readonly string[]): void {
  if (process.env[PACED_ENV] !== undefined) {
    delete process.env[PACED_ENV];
    delete process.env[JSC_RAM_ENV];
    return;
  }
  // Only the compiled executable (`bun src/main.ts` would need its script path again).
  const compiled = (process.argv[1] ?? '').startsWith('/$bunfs/');
  const env = pacedEnv(argv, process.env, compiled);
  if (!env || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...argv], env);
}
