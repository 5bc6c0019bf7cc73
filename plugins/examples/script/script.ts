/**
 * An example third-party executor for shoal, written as someone outside the project would write one
 * (docs/plugins.md): runtime "script" runs a script given inline in the service spec,
 *
 *     "TaskTemplate": { "Runtime": "script",
 *       "PluginSpec": { "script": { "Source": "echo hello; sleep 60", "Interpreter": ["/bin/sh", "-eu"] } } }
 *
 * At run time it uses nothing but the host object shoal hands it and Node's built-in modules; the
 * imports from shoal below are types only and vanish when the file is loaded. Install it by copying
 * this one file into the daemon's plugin directory (`<data-dir>/plugins`, or `--plugin-dir`).
 *
 * What it adds over the process runtime: the program is data in the spec (no file to ship to the
 * node first) and its interpreter is checked at service creation. Running it — process group,
 * surviving a daemon restart, logs, exit status — is the host's `processes` service.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  Controller, Executor, ExitStatus, Fingerprint, LogLine, LogOptions, TaskContext, TaskStats,
} from '../../../src/executor/contract.ts';
import type { ExecutorHost } from '../../../src/executor/loader.ts';
import type { Task, TaskSpec } from '../../../src/types/index.ts';

/** `PluginSpec.script`. Durations are nanoseconds, as everywhere in shoal's API. */
export interface ScriptSpec {
  /** The script's text. Required. */
  Source: string;
  /** The interpreter and its options; the script's path is appended. Default ["/bin/sh"]. */
  Interpreter?: string[];
  /** KEY=VALUE */
  Env?: string[];
  /** Working directory (absolute); default a scratch directory of the task. */
  Dir?: string;
  /** Default SIGTERM. */
  StopSignal?: string;
  StopGracePeriod?: number;
  /** References the daemon resolves and checks (docs/api.md); the files reach the script as `$SHOAL_SECRETS_DIR/<name>`, `$SHOAL_CONFIGS_DIR/<name>`. */
  Secrets?: unknown[];
  Configs?: unknown[];
}

const NAME = 'script';
const MAX_SOURCE_BYTES = 256 * 1024;
const SCRIPT_FILE = 'plugin-script';
const FIELDS = ['Source', 'Interpreter', 'Env', 'Dir', 'StopSignal', 'StopGracePeriod', 'Secrets', 'Configs'];

function specOf(spec: TaskSpec): ScriptSpec | undefined {
  return spec.PluginSpec?.[NAME] as ScriptSpec | undefined;
}

/** null when valid, else a message naming the field (shown to whoever created the service). */
export function validateScript(spec: TaskSpec): string | null {
  const s = specOf(spec);
  const at = `PluginSpec.${NAME}`;
  if (!s || typeof s !== 'object') return `${at}: required for runtime "${NAME}", e.g. {"Source": "echo hello"}`;
  const unknown = Object.keys(s).find((k) => !FIELDS.includes(k));
  if (unknown) return `${at}.${unknown}: unknown field (the fields are ${FIELDS.join(', ')})`;
  if (typeof s.Source !== 'string' || s.Source.trim() === '') return `${at}.Source: the script's text is required`;
  if (Buffer.byteLength(s.Source) > MAX_SOURCE_BYTES) return `${at}.Source: at most ${MAX_SOURCE_BYTES} bytes`;
  if (s.Interpreter !== undefined) {
    if (!Array.isArray(s.Interpreter) || s.Interpreter.length === 0 || !s.Interpreter.every((a) => typeof a === 'string' && !a.includes('\0'))) {
      return `${at}.Interpreter: a non-empty list of strings, e.g. ["/bin/sh", "-eu"]`;
    }
    if (!s.Interpreter[0]!.startsWith('/')) return `${at}.Interpreter: ${JSON.stringify(s.Interpreter[0])} must be an absolute path`;
  }
  if (s.Env !== undefined && !(Array.isArray(s.Env) && s.Env.every((e) => typeof e === 'string' && /^[^=\0]+=/.test(e)))) {
    return `${at}.Env: a list of KEY=VALUE strings`;
  }
  if (s.Dir !== undefined && (typeof s.Dir !== 'string' || !s.Dir.startsWith('/'))) return `${at}.Dir: must be an absolute path`;
  if (s.StopSignal !== undefined && (typeof s.StopSignal !== 'string' || !/^(SIG)?[A-Z0-9]+$/.test(s.StopSignal))) {
    return `${at}.StopSignal: a signal name such as SIGTERM`;
  }
  if (s.StopGracePeriod !== undefined && !(Number.isInteger(s.StopGracePeriod) && s.StopGracePeriod >= 0)) {
    return `${at}.StopGracePeriod: a non-negative number of nanoseconds`;
  }
  return null;
}

/**
 * The script runs as a supervised host process. Everything the controller needs is derived from
 * the task and its directory, so a fresh controller after a daemon restart can `recover()`.
 */
class ScriptController implements Controller {
  readonly #process: Controller;
  readonly #scriptPath: string;

  constructor(readonly host: ExecutorHost, readonly task: Task, readonly ctx: TaskContext) {
    const s = specOf(task.Spec)!;
    this.#scriptPath = join(ctx.taskDir, SCRIPT_FILE);
    this.#process = host.processes.controller(task, ctx, {
      Command: [...(s.Interpreter ?? ['/bin/sh']), this.#scriptPath],
      ...(s.Env ? { Env: s.Env } : {}),
      ...(s.Dir ? { Dir: s.Dir } : {}),
      ...(s.StopSignal ? { StopSignal: s.StopSignal } : {}),
      ...(s.StopGracePeriod !== undefined ? { StopGracePeriod: s.StopGracePeriod } : {}),
    });
  }

  async prepare(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const invalid = validateScript(this.task.Spec);
    if (invalid) throw new this.host.errors.PrepareError(invalid);
    try {
      mkdirSync(this.ctx.taskDir, { recursive: true });
      writeFileSync(this.#scriptPath, specOf(this.task.Spec)!.Source, { mode: 0o600 });
    } catch (err) {
      throw new this.host.errors.PrepareError(`cannot write the script to ${this.#scriptPath}: ${(err as Error).message}`);
    }
    await this.#process.prepare(signal);
  }

  start(signal: AbortSignal): Promise<void> { return this.#process.start(signal); }
  wait(signal: AbortSignal): Promise<ExitStatus> { return this.#process.wait(signal); }
  stop(graceMs: number): Promise<void> { return this.#process.stop(graceMs); }
  remove(): Promise<void> { return this.#process.remove(); }
  recover(): Promise<boolean> { return this.#process.recover(); }
  logs(opts?: LogOptions): AsyncIterable<LogLine> { return this.#process.logs(opts); }
  stats(): Promise<TaskStats> { return this.#process.stats(); }
}

export default function createScriptExecutor(host: ExecutorHost): Executor {
  if (host.apiVersion < 2) throw new Error(`needs shoal's executor host API 2 or later (this shoal offers ${host.apiVersion})`);
  return {
    name: NAME,
    // secrets: the worker writes the task's files to its tmpfs and hands them in `ctx.files`; the
    // host's process controller, given that ctx, tells the script where they are.
    capabilities: { recover: true, stats: true, logsFollow: true, signals: true, isolation: false, runAsUser: false, secrets: true },
    async fingerprint(signal?: AbortSignal): Promise<Fingerprint> {
      const procs = await host.processes.fingerprint(signal);
      const interpreters = ['/bin/sh', '/bin/bash', '/usr/bin/python3', '/usr/bin/perl'].filter((p) => existsSync(p));
      const attributes = { 'script.interpreters': interpreters.join(',') };
      if (!procs.healthy) return { healthy: false, message: `scripts run as host processes, and: ${procs.message}`, attributes };
      if (!interpreters.includes('/bin/sh')) return { healthy: false, message: 'no /bin/sh on this node', attributes };
      return { healthy: true, attributes, ...(procs.resources ? { resources: procs.resources } : {}) };
    },
    validate: validateScript,
    controller: (task, ctx) => new ScriptController(host, task, ctx),
  };
}
