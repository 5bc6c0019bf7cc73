/**
 * A soft ceiling on a daemon's RSS, in the manner of Go's GOMEMLIMIT.
 *
 * JavaScriptCore starts a full collection when the heap has grown by a factor of its size after the
 * last one (2× for a heap under a quarter of the paced RAM, gc-pacing.ts). A leader holding 100k
 * tasks and 1,000 sessions keeps 200-300 MiB of live heap, so in a burst of placements its heap was
 * let grow to 585-689 MiB before it collected, and its RSS peaked at 841-1,040 MiB (docs/scale.md,
 * stop 33). Pacing every collection harder (a smaller growth factor) kept the peak lower but made
 * a new leader slower to take its 1,000 sessions back, and was not kept.
 *
 * This acts only near the ceiling. The RSS is read (from /proc, ~7 µs) every CHECK_MS and, through
 * `poke`, wherever the daemon calls it, at most every POKE_MS (after each applied entry: a leader in
 * a burst ran its timers only every 0.3-0.9 s, and a manager may apply tens of thousands a second).
 * Over the ceiling, a full collection runs: Bun.gc(true), synchronous, ~300-400 ms for such a
 * leader, and it gives the freed memory back. The next one waits until the
 * RSS is over the ceiling again and has grown by REGROW over what the last one left, and at least
 * MIN_GAP_MS: a daemon whose live memory is simply over the ceiling collects at most once per 25%
 * of growth rather than thrashing. Below the ceiling nothing changes: the collector paces itself.
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import { DAEMON_RAM_BYTES, JSC_RAM_ENV } from '../lib/gc-pacing.ts';

export const CHECK_MS = 100;
export const POKE_MS = 10;
export const MIN_GAP_MS = 250;
export const REGROW = 1.25;
/** The operator's ceiling in MiB (0: none); by default CEILING_SHARE of the paced RAM. */
export const CEILING_ENV = 'SHOAL_MEMORY_CEILING_MIB';
export const CEILING_SHARE = 0.4;

export interface CeilingOptions {
  ceilingBytes: number;
  rss?: () => number;
  collect?: () => void;
  now?: () => number;
  checkMs?: number;
  /** Called after each collection it ran, with the RSS before and after (for the log and tests). */
  onCollect?: (before: number, after: number) => void;
}

export interface MemoryCeiling {
  /** One check (the timer's; exposed for tests). */
  check(): void;
  /** A check, unless the last was less than POKE_MS ago: for callers on a hot path. */
  poke(): void;
  stop(): void;
  readonly collections: number;
}

/**
 * The ceiling for this daemon in bytes, or 0 for none: the environment's, else a share of the RAM
 * the collector is paced for (an operator's own BUN_JSC_forceRAMSize, else gc-pacing.ts's).
 */
export function ceilingBytes(env: NodeJS.ProcessEnv, ram: number): number {
  const set = env[CEILING_ENV];
  if (set !== undefined && set.trim() !== '') {
    const mib = Number(set);
    if (!Number.isFinite(mib) || mib < 0) throw new InvalidArgumentError(`${CEILING_ENV} must be a number of MiB (0 for no ceiling), not ${JSON.stringify(set)}`);
    return Math.round(mib * 1024 * 1024);
  }
  const forced = Number(env[JSC_RAM_ENV]);
  return Math.round((forced > 0 ? forced : Math.min(ram, DAEMON_RAM_BYTES)) * CEILING_SHARE);
}

export function memoryCeiling(opts: CeilingOptions): MemoryCeiling {
  const { ceilingBytes: ceiling, rss = () => process.memoryUsage.rss(), collect = () => Bun.gc(true), now = () => performance.now() } = opts;
  let trigger = ceiling;
  let last = -Infinity;
  let collections = 0;
  let lastPoke = -Infinity;
  const check = () => {
    if (ceiling <= 0) return; // no ceiling
    const before = rss();
    if (before < ceiling) {
      trigger = ceiling; // memory came back (the collector's own collections): the ceiling again
      return;
    }
    if (before < trigger || now() - last < MIN_GAP_MS) return;
    collect();
    collections++;
    last = now();
    const after = rss();
    trigger = Math.max(ceiling, after * REGROW);
    opts.onCollect?.(before, after);
  };
  const timer = ceiling > 0 ? setInterval(check, opts.checkMs ?? CHECK_MS) : null;
  // Never what keeps a stopping daemon alive.
  timer?.unref();
  return {
    check,
    poke: () => {
      const t = now();
      if (t - lastPoke < POKE_MS) return;
      lastPoke = t;
      check();
    },
    stop: () => {
      if (timer) clearInterval(timer);
    },
    get collections() {
      return collections;
    },
  };
}
