/**
 * How often JavaScriptCore collects a daemon's heap.
 *
 * JavaScriptCore lets a heap grow between full collections by a factor it picks from the machine's
 * RAM: twice its size while the heap is under a quarter of the RAM, 1.5× under half, 1.24× above.
 * On a 24 GiB host a leader holding 100k tasks (about 700 MiB after a collection) was therefore let
 * grow to 1.2 GiB during a burst of placements before it collected (docs/scale.md, stop 30), which
 * is garbage, and RSS, a manager does not need. The daemon tells JavaScriptCore the RAM is 2 GiB
 * (or the machine's, if less), with its `forceRAMSize` option.
 *
 * That still left a leader's heap of 200-300 MiB (100k tasks and 1,000 sessions, live) growing 2×
 * before each full collection, and a burst's peak near 1 GiB of RSS (docs/scale.md, stop 33). So
 * the small heaps' share of that RAM is a tenth (`smallHeapRAMFraction`, 0.25 by default): a heap
 * under ~205 MiB still grows 2× (an idle daemon's, a leader's with 10k tasks, where collecting more
 * often costs a burst its CPU), one of up to 1 GiB 1.5×, one above 1.24×.
 *
 * The options are read once, when the runtime starts, from the environment: the compiled daemon
 * executes itself again with them set (execve: the same process id, arguments and descriptors), and
 * takes them out of its environment once started, so the commands it runs do not inherit them. An
 * operator who sets one of them keeps their own value.
 */
import { totalmem } from 'node:os';

export const JSC_RAM_ENV = 'BUN_JSC_forceRAMSize';
export const JSC_SMALL_HEAP_ENV = 'BUN_JSC_smallHeapRAMFraction';
/** Set on the second start, so that it happens once: the names of the options the daemon set. */
const PACED_ENV = 'SHOAL_GC_PACED';
export const DAEMON_RAM_BYTES = 2 * 1024 ** 3;
/** A double option, given as one (forceRAMSize is an integer: given as `2.5e10` it was misread, stop 31). */
export const SMALL_HEAP_RAM_FRACTION = '0.1';

/** The environment for the daemon's second start, or null when it starts as it is. */
export function pacedEnv(argv: readonly string[], env: NodeJS.ProcessEnv, compiled: boolean, ram = totalmem()): NodeJS.ProcessEnv | null {
  if (argv[0] !== 'daemon' || !compiled || env[PACED_ENV] !== undefined) return null;
  const wanted: Record<string, string> = {
    [JSC_RAM_ENV]: String(Math.min(ram, DAEMON_RAM_BYTES)),
    [JSC_SMALL_HEAP_ENV]: SMALL_HEAP_RAM_FRACTION,
  };
  const set = Object.keys(wanted).filter((k) => env[k] === undefined);
  if (set.length === 0) return null;
  return { ...env, ...Object.fromEntries(set.map((k) => [k, wanted[k]!])), [PACED_ENV]: set.join(',') };
}

/**
 * Called first thing by main: starts the compiled daemon again with its collector paced (above),
 * or, in the daemon so started, takes the settings it added out of the environment its children
 * inherit (an operator's own stay).
 */
export function paceCollector(argv: readonly string[]): void {
  const paced = process.env[PACED_ENV];
  if (paced !== undefined) {
    delete process.env[PACED_ENV];
    for (const k of paced.split(',')) if (k.startsWith('BUN_JSC_')) delete process.env[k];
    return;
  }
  // Only the compiled executable (`bun src/main.ts` would need its script path again).
  const compiled = (process.argv[1] ?? '').startsWith('/$bunfs/');
  const env = pacedEnv(argv, process.env, compiled);
  if (!env || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...argv], env);
}
