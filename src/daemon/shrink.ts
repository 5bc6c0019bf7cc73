/**
 * A daemon's start (the CLI's modules, a join's keys and certificates, TLS, the first sessions) runs
 * a lot of code once; JavaScriptCore keeps the compiled code and the heap it grew to. Once the
 * daemon has been quiet for a moment after starting (or after its network came up), a full
 * collection and `Bun.shrink()` (JavaScriptCore's shrinkFootprintWhenIdle: drop compiled code,
 * collect, give free memory back) take an idle worker from ~95 to ~85 MiB of RSS (docs/footprint.md).
 * Code that runs again is compiled again from the executable's bytecode. Then the executable's own
 * pages are paged out (pageout.ts): ~53 of the worker's MiB were file-backed.
 */

/** Quiet time after the last start step before shrinking: the start's own burst is over by then. */
export const SETTLE_MS = 2_000;
/**
 * One more shrink this long after that one: the first minute (first sessions, gossip converging,
 * certificate checks) compiles code the idle daemon does not run again. Measured: a worker went
 * from 80 to ~87.5 MiB over 4 minutes with one shrink, to 84-86.7 MiB with a second at a minute.
 * Not periodic: each shrink throws away all compiled code, a busy manager's hot paths too.
 */
export const LATER_MS = 60_000;

/**
 * A shrink is put off while the daemon is busy: more than BUSY_SHARE of a core in the PROBE_MS
 * before it. A leader placing tasks a minute after its start lost all its compiled code to the
 * later shrink in the middle of the work: a tenth of its CPU samples were that collection, and its
 * hot paths ran in the interpreter again (docs/scale.md, stop 29). A shrink put off is tried again
 * after the same delay.
 */
export const BUSY_SHARE = 0.25;
export const PROBE_MS = 1_000;

export interface Shrinker {
  /** Shrink `settleMs` after the last call (each call moves it later), and once more `laterMs` after that. */
  settled(): void;
  stop(): void;
}

export interface ShrinkerOptions {
  settleMs?: number;
  laterMs?: number;
  /** Default: Bun's (absent in a runtime that dropped it: then nothing is done). */
  shrink?: (() => void) | undefined;
  /** CPU time this process has used so far, in ms (default process.cpuUsage()). */
  cpuMs?: () => number;
  probeMs?: number;
}

export function idleShrinker(opts: ShrinkerOptions = {}): Shrinker {
  const { settleMs = SETTLE_MS, laterMs = LATER_MS, probeMs = PROBE_MS, cpuMs = processCpuMs } = opts;
  const shrink = 'shrink' in opts ? opts.shrink : bunShrink();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const after = (ms: number, then: () => void) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      then();
    }, ms);
    // Never what keeps a stopping daemon alive.
    timer.unref();
  };
  /** Shrink `ms` from now unless busy in the probe before it (then try again `ms` later); then `next`. */
  const shrinkIn = (ms: number, next?: () => void) => {
    const probe = Math.min(probeMs, ms);
    after(ms - probe, () => {
      const used = cpuMs();
      const t0 = performance.now();
      after(probe, () => {
        const busy = cpuMs() - used > BUSY_SHARE * Math.max(1, performance.now() - t0);
        if (busy) return shrinkIn(ms, next);
        shrink!();
        next?.();
      });
    });
  };
  return {
    settled() {
      if (!shrink) return;
      shrinkIn(settleMs, () => shrinkIn(laterMs));
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function bunShrink(): (() => void) | undefined {
  const bun = Bun as unknown as { shrink?: () => void };
  if (typeof bun.shrink !== 'function') return undefined;
  return () => {
    Bun.gc(true);
    bun.shrink!();
    // The executable's pages the start touched and the idle daemon does not (pageout.ts).
    void import('./pageout.ts').then((m) => m.pageOutExecutable()).catch(() => {});
  };
}
