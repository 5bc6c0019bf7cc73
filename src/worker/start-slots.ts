/**
 * A bound on how many of a node's tasks prepare or start at once. A thousand assignments arriving
 * together otherwise prepare and spawn a thousand tasks in the same instant: every one of them then
 * waits on the same CPU, each start takes as long as all of them, and the session's heartbeats wait
 * behind the lot. With a bound, tasks start in a steady stream and the first ones run early.
 *
 * Only `prepare` and `start` hold a slot: a running task's `wait`, a health check after the start
 * (the worker's HealthGate wraps the bounded controller) and stopping never do, so a slow or
 * stuck task cannot keep others from being stopped.
 */
import PQueue from 'p-queue';
import type { Controller } from '../executor/contract.ts';
import { DelegatingController } from '../executor/delegate.ts';

/** Tasks preparing or starting at once on a node, by default. */
export const DEFAULT_CONCURRENT_STARTS = 32;

export class StartSlots {
  readonly #queue: PQueue;

  constructor(readonly concurrency = DEFAULT_CONCURRENT_STARTS) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrent task starts must be a whole number ≥ 1, not ${concurrency}`);
    }
    this.#queue = new PQueue({ concurrency });
  }

  /** Tasks holding a slot now, and waiting for one. */
  get active(): number { return this.#queue.pending; }
  get waiting(): number { return this.#queue.size; }

  /** Run `fn` in a slot; aborting `signal` while it waits gives up the place in the line. */
  run<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    signal.throwIfAborted();
    return this.#queue.add(fn, { signal });
  }

  /** `ctl` with its prepare and start bounded by these slots. */
  wrap(ctl: Controller): Controller {
    return new BoundedController(ctl, this);
  }
}

class BoundedController extends DelegatingController {
  constructor(inner: Controller, private readonly slots: StartSlots) {
    super(inner);
    if (inner.pid) this.pid = () => inner.pid!();
    if (inner.address) this.address = () => inner.address!();
  }

  pid?: () => Promise<number | undefined>;
  address?: () => Promise<string | undefined>;

  override prepare(signal: AbortSignal): Promise<void> { return this.slots.run(() => this.inner.prepare(signal), signal); }
  override start(signal: AbortSignal): Promise<void> { return this.slots.run(() => this.inner.start(signal), signal); }
}
