/**
 * The executors this node offers. Built-ins are imported statically: `bun build --compile` only
 * embeds modules it can see at build time. Third-party executors are added with `register()`.
 */
import { createContainerExecutor } from '../../plugins/container/index.ts';
import { createMockExecutor } from '../../plugins/mock/index.ts';
import { createProcessExecutor, type ProcessExecutorOptions } from '../../plugins/process/index.ts';
import { createVmExecutor } from '../../plugins/vm/index.ts';
import { runtimeOf, type TaskSpec } from '../types/index.ts';
import type { Executor, Fingerprint } from './contract.ts';
import { ExecutorError, errorMessage, UnknownRuntimeError } from './errors.ts';

/** One runtime as a node reports it (`NodeDescription.Runtimes`). */
export interface RuntimeReport { Name: string; Healthy: boolean; Message?: string }

const FINGERPRINT_TIMEOUT_MS = 5_000;
const RUNTIME_NAME = /^[a-z][a-z0-9-]{0,62}$/;

export class ExecutorCatalog {
  #executors = new Map<string, Executor>();

  constructor(executors: Executor[] = []) {
    for (const e of executors) this.register(e);
  }

  register(executor: Executor): void {
    if (!RUNTIME_NAME.test(executor.name)) {
      throw new ExecutorError(`executor name "${executor.name}": use lowercase letters, digits and dashes`);
    }
    if (this.#executors.has(executor.name)) throw new ExecutorError(`executor "${executor.name}" is already registered`);
    this.#executors.set(executor.name, executor);
  }

  /** Throws UnknownRuntimeError naming the runtime and what this node has. */
  get(name: string): Executor {
    const e = this.#executors.get(name);
    if (!e) throw new UnknownRuntimeError(name, this.names());
    return e;
  }

  has(name: string): boolean { return this.#executors.has(name); }
  names(): string[] { return [...this.#executors.keys()].sort(); }
  list(): Executor[] { return this.names().map((n) => this.#executors.get(n)!); }

  /** Every executor's fingerprint, each bounded in time; a throwing executor reports unhealthy. */
  async fingerprints(signal?: AbortSignal): Promise<Map<string, Fingerprint>> {
    const out = new Map<string, Fingerprint>();
    await Promise.all(this.list().map(async (e) => {
      const bound = AbortSignal.any([AbortSignal.timeout(FINGERPRINT_TIMEOUT_MS), ...(signal ? [signal] : [])]);
      try {
        out.set(e.name, await Promise.race([e.fingerprint(bound), rejectOnAbort(bound)]));
      } catch (err) {
        out.set(e.name, { healthy: false, message: `fingerprint failed: ${errorMessage(err)}`, attributes: {} });
      }
    }));
    return out;
  }

  /** The runtimes as `NodeDescription.Runtimes`, sorted by name. */
  async fingerprintAll(signal?: AbortSignal): Promise<RuntimeReport[]> {
    const fps = await this.fingerprints(signal);
    return this.names().map((Name) => {
      const f = fps.get(Name)!;
      return { Name, Healthy: f.healthy, ...(f.message ? { Message: f.message } : {}) };
    });
  }

  /**
   * Check a task spec as the API does before accepting a service: null when valid, else a message
   * naming the field. A runtime this node lacks is an error unless `allowUnknownRuntime` (a manager
   * may accept work only some workers can run; the scheduler then filters on fingerprints).
   */
  validate(spec: TaskSpec, opts: { allowUnknownRuntime?: boolean } = {}): string | null {
    const runtime = runtimeOf(spec);
    const e = this.#executors.get(runtime);
    if (!e) return opts.allowUnknownRuntime ? null : new UnknownRuntimeError(runtime, this.names()).message;
    return e.validate(spec);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.list().map((e) => e.close?.()));
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new ExecutorError(signal.reason instanceof Error && signal.reason.name === 'TimeoutError'
      ? `no answer within ${FINGERPRINT_TIMEOUT_MS} ms` : 'aborted'));
    if (signal.aborted) fail(); else signal.addEventListener('abort', fail, { once: true });
  });
}

/**
 * The built-in executors, as the daemon starts them. All four are always registered: a runtime
 * this host cannot run (no Docker Engine, no QEMU) reports itself unhealthy in its fingerprint, so
 * the scheduler places none of its tasks here and `service ps` says why.
 */
export function builtinCatalog(opts: { nodeId?: string; log?: (msg: string) => void } = {}, processes: ProcessExecutorOptions = {}): ExecutorCatalog {
  return new ExecutorCatalog([createProcessExecutor(processes), createMockExecutor(), createContainerExecutor(opts), createVmExecutor()]);
}
