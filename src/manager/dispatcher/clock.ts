/**
 * The time source of the dispatcher and of the worker's session client. Tests pass a manual clock
 * (plugins/mock's `ManualClock` fits) so that heartbeat deadlines pass without sleeping.
 */
export interface Clock {
  /** ms since the epoch (or since the simulation began). */
  now(): number;
  /** Call `fn` after `ms`; returns the cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
