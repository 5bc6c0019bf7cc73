/**
 * Reading a task's logs from the worker that runs it, over that worker's session: the manager sends
 * `logs.request`, the worker answers with `logs.line` batches and one `logs.end`.
 */
import { ShoalError } from '../../lib/errors.ts';
import type { LogLine, LogOptions } from '../../executor/contract.ts';

export class LogStreamError extends ShoalError {
  override readonly status = 502;
}

/**
 * A bounded queue between frames arriving and a consumer iterating. A consumer that falls more than
 * `maxLines` behind ends the stream with an error rather than letting the queue grow.
 */
export class LogStream {
  #lines: LogLine[] = [];
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(readonly requestId: number, private readonly maxLines: number, private readonly cancel: () => void) {}

  get ended(): boolean { return this.#ended; }

  push(lines: LogLine[]): void {
    if (this.#ended) return;
    this.#lines.push(...lines);
    if (this.#lines.length > this.maxLines) {
      this.end(`log reader fell more than ${this.maxLines} lines behind`);
      this.cancel();
      return;
    }
    this.#notify();
  }

  end(error?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error) this.#error = new LogStreamError(error);
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async *iterate(signal?: AbortSignal): AsyncGenerator<LogLine> {
    const onAbort = () => { this.end(); this.cancel(); };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        while (this.#lines.length > 0) yield this.#lines.shift()!;
        if (this.#ended) {
          if (this.#error) throw this.#error;
          return;
        }
        // Bounded by the stream's end: a session close, the worker's logs.end, or the abort above.
        await new Promise<void>((resolve) => { this.#wake = resolve; });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!this.#ended) { this.end(); this.cancel(); }
    }
  }
}

export type RemoteLogOptions = Omit<LogOptions, 'signal'> & { signal?: AbortSignal };
