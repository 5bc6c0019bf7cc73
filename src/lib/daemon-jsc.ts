/**
 * The JavaScriptCore options a daemon runs with (src/lib/gc-pacing.ts until stop 32).
 *
 * - **The collector paced for a server** (`forceRAMSize`, stop 30). JavaScriptCore lets a heap grow
 *   between full collections by a factor it picks from the machine's RAM: up to twice its size while
 *   it is under a quarter of the RAM, 1.5× under half, 1.24× above. On a 24 GiB host a leader
 *   holding 100k tasks (about 700 MiB after a collection) was therefore let grow to 1.2 GiB during a
 *   burst of placements before it collected (docs/scale.md, stop 30), which is garbage, and RSS, a
 *   manager does not need. The daemon tells JavaScriptCore the RAM is 2 GiB (or the machine's, if
 *   less), so a heap over 1 GiB grows 1.24× and one of 512 MiB-1 GiB 1.5×; an idle daemon's heap of
 *   a few tens of MiB is paced as before.
 * - **No FTL tier** (`useFTLJIT=false`, stop 32). JavaScriptCore's fourth tier compiles a function
 *   hot enough with a full optimising backend, on compiler threads of its own. A manager's hot
 *   functions turn hot all at once, in the first burst of work it is given (a service's tasks
 *   created, placed, applied, dispatched), and its FTL compiles then took the CPU that work needed.
 *   On the bench's 2 cores, ten services of 1,000 replicas created at once cost the leader 1.26-1.41
 *   CPU seconds with FTL and 0.97-1.26 without, and were placed at 11,300-13,000 tasks a second
 *   against 13,550-15,600 (one run of four went out in three waves: 9,400). Warm, the 90k step that
 *   follows was not slower without it: 13,600-15,200/s with, 15,050-17,800/s without
 *   (docs/scale.md, stop 32). The DFG tier, the third, still optimises.
 *
 * The options are read once, when the runtime starts, from the environment: the compiled daemon
 * executes itself again with them set (execve: the same process id, arguments and descriptors), and
 * takes out of its environment once started those it set, so the commands it runs do not inherit
 * them. An operator who sets one (BUN_JSC_forceRAMSize, BUN_JSC_useFTLJIT) keeps their own value.
 */
import { totalmem } from 'node:os';

export const JSC_RAM_ENV = 'BUN_JSC_forceRAMSize';
export const JSC_FTL_ENV = 'BUN_JSC_useFTLJIT';
/** Set on the second start, so that it happens once: the names of the options it set. */
const SET_ENV = 'SHOAL_JSC_SET';
export const DAEMON_RAM_BYTES = 2 * 1024 ** 3;

/** The environment for the daemon's second start, or null when it starts as it is. */
export function daemonJscEnv(argv: readonly string[], env: NodeJS.ProcessEnv, compiled: boolean, ram = totalmem()): NodeJS.ProcessEnv | null {
  if (argv[0] !== 'daemon' || !compiled || env[SET_ENV] !== undefined) return null;
  const wanted: Record<string, string> = { [JSC_RAM_ENV]: String(Math.min(ram, DAEMON_RAM_BYTES)), [JSC_FTL_ENV]: 'false' };
  const set = Object.keys(wanted).filter((k) => env[k] === undefined);
  if (set.length === 0) return null;
  const out: NodeJS.ProcessEnv = { ...env, [SET_ENV]: set.join(',') };
  for (const k of set) out[k] = wanted[k];
  return out;
}

/**
 * Called first thing by main: starts the compiled daemon again with its options (above), or, in
 * the daemon so started, takes those it set out of the environment its children inherit.
 */
export function tuneDaemonRuntime(argv: readonly string[]): void {
  const set = process.env[SET_ENV];
  if (set !== undefined) {
    delete process.env[SET_ENV];
    for (const k of set.split(',')) if (k.startsWith('BUN_JSC_')) delete process.env[k];
    return;
  }
  // Only the compiled executable (`bun src/main.ts` would need its script path again).
  const compiled = (process.argv[1] ?? '').startsWith('/$bunfs/');
  const env = daemonJscEnv(argv, process.env, compiled);
  if (!env || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...argv], env);
}
