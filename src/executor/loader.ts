/**
 * Third-party executors, loaded from a directory at daemon start.
 *
 * A plugin is one `.js`/`.mjs`/`.ts` file, bundled: a compiled shoal has no node_modules, so bare
 * imports (`import x from "some-package"`) fail at load time. Whatever it needs from shoal comes in
 * the `ExecutorHost` object instead. Its default export is
 *
 *     export default function (host: ExecutorHost): Executor | Promise<Executor>
 *
 * and it must pass the compliance suite in test/compliance/executor-suite.ts.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ExecutorCatalog } from './catalog.ts';
import type { Executor } from './contract.ts';
import { ExecutorError, errorMessage, PrepareError, StartError } from './errors.ts';
import { pause, pollUntil, selectLines } from './logs.ts';

export const EXECUTOR_HOST_API_VERSION = 1;

/** What shoal hands a plugin: its error classes and helpers, so the plugin needs no imports. */
export interface ExecutorHost {
  apiVersion: number;
  errors: { ExecutorError: typeof ExecutorError; PrepareError: typeof PrepareError; StartError: typeof StartError };
  logs: { selectLines: typeof selectLines; pause: typeof pause; pollUntil: typeof pollUntil };
  /** The daemon's log, prefixed with the plugin's file name. */
  log(msg: string): void;
}

export interface LoadReport {
  loaded: { file: string; name: string }[];
  failed: { file: string; message: string }[];
}

const PLUGIN_FILE = /\.(m?js|ts)$/;
const MAX_PLUGINS = 64;

/** Load every plugin in `dir` into `catalog`. A broken plugin is reported, never fatal. */
export async function loadExecutors(
  dir: string, catalog: ExecutorCatalog, log: (msg: string) => void = () => {},
): Promise<LoadReport> {
  const report: LoadReport = { loaded: [], failed: [] };
  let files: string[];
  try { files = readdirSync(dir).filter((f) => PLUGIN_FILE.test(f) && !f.endsWith('.d.ts')).sort(); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return report;
    throw new ExecutorError(`plugin directory ${dir}: ${errorMessage(err)}`);
  }
  if (files.length > MAX_PLUGINS) throw new ExecutorError(`plugin directory ${dir}: ${files.length} files, at most ${MAX_PLUGINS}`);
  for (const f of files) {
    const file = join(dir, f);
    try {
      const mod = await import(pathToFileURL(file).href) as { default?: unknown };
      if (typeof mod.default !== 'function') throw new Error('the default export must be a function (host) => Executor');
      const host: ExecutorHost = {
        apiVersion: EXECUTOR_HOST_API_VERSION,
        errors: { ExecutorError, PrepareError, StartError },
        logs: { selectLines, pause, pollUntil },
        log: (msg) => log(`${f}: ${msg}`),
      };
      const executor = checkShape(await (mod.default as (h: ExecutorHost) => unknown)(host));
      catalog.register(executor);
      report.loaded.push({ file, name: executor.name });
    } catch (err) {
      report.failed.push({ file, message: errorMessage(err) });
      log(`plugin ${file} not loaded: ${errorMessage(err)}`);
    }
  }
  return report;
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
