/** A controller wrapper's base: every call goes to `inner`; a wrapper overrides what it changes (StartSlots, HealthGate). */
import type { Controller, ExitStatus, LogLine, LogOptions, TaskStats } from './contract.ts';

export abstract class DelegatingController implements Controller {
  constructor(protected readonly inner: Controller) {}

  prepare(signal: AbortSignal): Promise<void> { return this.inner.prepare(signal); }
  start(signal: AbortSignal): Promise<void> { return this.inner.start(signal); }
  wait(signal: AbortSignal): Promise<ExitStatus> { return this.inner.wait(signal); }
  stop(graceMs: number): Promise<void> { return this.inner.stop(graceMs); }
  remove(): Promise<void> { return this.inner.remove(); }
  recover(): Promise<boolean> { return this.inner.recover(); }
  logs(opts?: LogOptions): AsyncIterable<LogLine> { return this.inner.logs(opts); }
  stats(): Promise<TaskStats> { return this.inner.stats(); }
}
