/**
 * Third-party executors, loaded from a directory at daemon start (docs/plugins.md is the guide).
 *
 * A plugin is one `.js`/`.mjs`/`.ts` file, bundled: a compiled shoal has no node_modules, so bare
 * imports (`import x from "some-package"`) fail at load time. Node's and Bun's built-in modules
 * work. Whatever it needs from shoal comes in the `ExecutorHost` object instead. Its default
 * export is
 *
 *     export default function (host: ExecutorHost): Executor | Promise<Executor>
 *
 * and it must pass the compliance suite in test/compliance/executor-suite.ts. A plugin that fails
 * to load (throws, exports the wrong shape, takes a name already taken, hangs) is reported and
 * skipped: the daemon starts without it.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createProcessExecutor, type ProcessExecutorOptions } from '../../plugins/process/index.ts';
import type { ProcessSpec, Task } from '../types/index.ts';
import type { ExecutorCatalog } from './catalog.ts';
import type { Controller, Executor, Fingerprint, TaskContext } from './contract.ts';
import { ExecutorError, errorMessage, PrepareError, StartError } from './errors.ts';
import { pause, pollUntil, selectLines } from './logs.ts';

export const EXECUTOR_HOST_API_VERSION = 2;

/** Supervised host processes: the process runtime's machinery, for plugins that run programs. */
export interface HostProcesses {
  /**
   * A controller that runs `spec` as a host process for `task`: in its own process group (and
   * cgroup where the host allows), under a shim that outlives a daemon restart, with its output
   * as the task's log and its exit status recorded in `ctx.taskDir`. Every Controller method
   * works as the process runtime's do, recover() included.
   */
  controller(task: Task, ctx: TaskContext, spec: ProcessSpec): Controller;
  /** Whether this host can supervise processes (the process runtime's fingerprint). */
  fingerprint(signal?: AbortSignal): Promise<Fingerprint>;
}

/** What shoal hands a plugin: its error classes and helpers, so the plugin needs no imports. */
export interface ExecutorHost {
  /** Bumped when a member changes incompatibly; a plugin may refuse to load on a version it does not know. */
  apiVersion: number;
  errors: { ExecutorError: typeof ExecutorError; PrepareError: typeof PrepareError; StartError: typeof StartError };
  logs: { selectLines: typeof selectLines; pause: typeof pause; pollUntil: typeof pollUntil };
  processes: HostProcesses;
  /** The daemon's log, prefixed with the plugin's file name. */
  log(msg: string): void;
}

/** How the host is made: tests point the process shim at a source checkout. */
export interface HostOptions {
  processes?: ProcessExecutorOptions;
}

/** One file of the plugin directory: loaded (with its runtime name) or failed (with the error). */
export interface PluginRecord {
  file: string;
  /** The runtime it registered, when loaded. */
  runtime?: string;
  error?: string;
}

export interface LoadReport {
  dir: string;
  plugins: PluginRecord[];
}

const PLUGIN_FILE = /\.(m?js|ts)$/;
const MAX_PLUGINS = 64;
/** A plugin's module and factory together get this long; a plugin that hangs is skipped. */
const LOAD_TIMEOUT_MS = 10_000;

export function createExecutorHost(file: string, log: (msg: string) => void, opts: HostOptions = {}): ExecutorHost {
  let processes: Executor | undefined;
  const exec = () => (processes ??= createProcessExecutor(opts.processes));
  return {
    apiVersion: EXECUTOR_HOST_API_VERSION,
    errors: { ExecutorError, PrepareError, StartError },
    logs: { selectLines, pause, pollUntil },
    processes: {
      controller: (task, ctx, spec) => exec().controller({ ...task, Spec: { ...task.Spec, Runtime: 'process', ProcessSpec: spec } }, ctx),
      fingerprint: (signal) => exec().fingerprint(signal),
    },
    log: (msg) => log(`plugin ${basename(file)}: ${msg}`),
  };
}

/**
 * Load every plugin in `dir` into `catalog`. Never throws: a missing directory loads nothing, an
 * unreadable one is one failed record, and each broken plugin is a failed record naming its error.
 */
export async function loadExecutors(
  dir: string, catalog: ExecutorCatalog, log: (msg: string) => void = () => {}, opts: HostOptions = {},
): Promise<LoadReport> {
  const report: LoadReport = { dir, plugins: [] };
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => PLUGIN_FILE.test(f) && !f.endsWith('.d.ts')).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') report.plugins.push({ file: dir, error: `plugin directory ${dir}: ${errorMessage(err)}` });
    return report;
  }
  if (files.length > MAX_PLUGINS) {
    report.plugins.push({ file: dir, error: `plugin directory ${dir}: ${files.length} plugin files, at most ${MAX_PLUGINS}; none loaded` });
    return report;
  }
  for (const f of files) {
    const file = join(dir, f);
    try {
      if (!statSync(file).isFile()) throw new Error('not a regular file');
      const executor = await withTimeout(loadOne(file, log, opts), LOAD_TIMEOUT_MS, `no executor within ${LOAD_TIMEOUT_MS} ms`);
      catalog.register(guard(executor));
      report.plugins.push({ file, runtime: executor.name });
      log(`plugin ${file}: runtime "${executor.name}" loaded`);
    } catch (err) {
      report.plugins.push({ file, error: errorMessage(err) });
      log(`plugin ${file} not loaded: ${errorMessage(err)}`);
    }
  }
  return report;
}

async function loadOne(file: string, log: (msg: string) => void, opts: HostOptions): Promise<Executor> {
  const mod = await import(pathToFileURL(file).href) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error('the default export must be a function (host) => Executor');
  return checkShape(await (mod.default as (h: ExecutorHost) => unknown)(createExecutorHost(file, log, opts)));
}

function checkShape(e: unknown): Executor {
  const x = e as Partial<Record<keyof Executor, unknown>> | null;
  if (!x || typeof x !== 'object') throw new Error('the default export returned no executor object');
  if (typeof x.name !== 'string') throw new Error('executor.name: must be a string');
  if (!x.capabilities || typeof x.capabilities !== 'object') throw new Error('executor.capabilities: must be an object');
  for (const m of ['fingerprint', 'validate', 'controller'] as const) {
    if (typeof x[m] !== 'function') throw new Error(`executor.${m}: must be a function`);
  }
  return x as Executor;
}

/** A plugin's `validate` that throws is a refusal naming the plugin, not a 500 from the API. */
function guard(e: Executor): Executor {
  return {
    name: e.name,
    capabilities: e.capabilities,
    fingerprint: (signal) => e.fingerprint(signal),
    validate(spec) {
      try { return e.validate(spec); } catch (err) {
        return `TaskTemplate.Runtime: the "${e.name}" plugin could not check this spec: ${errorMessage(err)}`;
      }
    },
    controller: (task, ctx) => e.controller(task, ctx),
    ...(typeof e.close === 'function' ? { close: () => e.close!() } : {}),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
