/** Helpers shared by executors for `Controller.logs` options. */
import type { LogLine, LogOptions } from './contract.ts';

/** Apply `since` then `tail` to the lines that exist now. */
export function selectLines(lines: LogLine[], opts: Pick<LogOptions, 'since' | 'tail'>): LogLine[] {
  let out = opts.since === undefined ? lines : lines.filter((l) => l.time >= opts.since!);
  if (opts.tail !== undefined) out = opts.tail <= 0 ? [] : out.slice(-opts.tail);
  return out;
}

/** Resolve after `ms`, or as soon as `signal` aborts (never rejects): the pause of a polling loop. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Poll `check` every `intervalMs` until it returns a value other than undefined. Bounded by
 * `timeoutMs` (then undefined) and by `signal` (then rejects with its reason).
 */
export async function pollUntil<T>(
  check: () => T | undefined | Promise<T | undefined>,
  opts: { intervalMs: number; timeoutMs: number; signal?: AbortSignal },
): Promise<T | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    opts.signal?.throwIfAborted();
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) return undefined;
    await pause(Math.min(opts.intervalMs, Math.max(1, deadline - Date.now())), opts.signal);
  }
}
