/**
 * The example third-party executor (plugins/examples/script) passes the executor compliance suite,
 * loaded the way the daemon loads it: copied alone into a plugin directory (so an import of shoal's
 * internals at run time would fail) and handed a host object.
 */
import { afterAll, expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ExecutorCatalog } from '../../src/executor/catalog.ts';
import type { Executor } from '../../src/executor/contract.ts';
import { createExecutorHost, type ExecutorHost, loadExecutors } from '../../src/executor/loader.ts';
import type { TaskSpec } from '../../src/types/index.ts';
import { executorCompliance } from './executor-suite.ts';

const pluginDir = mkdtempSync(join(tmpdir(), 'shoal-plugins-'));
const file = join(pluginDir, 'script.ts');
copyFileSync(resolve(import.meta.dir, '../../plugins/examples/script/script.ts'), file);
afterAll(() => rmSync(pluginDir, { recursive: true, force: true }));
const hostOptions = { processes: { shimCommand: [process.execPath, resolve(import.meta.dir, '../../plugins/process/shim-entry.ts')] } };

const catalog = new ExecutorCatalog();
const report = await loadExecutors(pluginDir, catalog, () => {}, hostOptions);

test('the example plugin loads from a plugin directory of its own', () => {
  expect(report.plugins).toEqual([{ file, runtime: 'script' }]);
  expect(catalog.names()).toEqual(['script']);
});

const { default: create } = await import(pathToFileURL(file).href) as { default: (h: ExecutorHost) => Executor };
const script = (Source: string, more: object = {}): TaskSpec => ({ Runtime: 'script', PluginSpec: { script: { Source, ...more } } });

executorCompliance('script', () => create(createExecutorHost(file, () => {}, hostOptions)), {
  exitZero: script('echo one; echo two >&2; sleep 0.2; echo three'),
  exitThree: script('exit 3'),
  longRunning: script('echo up; exec sleep 1000'),
  ignoresStop: script("trap '' TERM; echo up; while :; do sleep 0.05; done"),
  startFails: script('echo never', { Interpreter: ['/nonexistent/interpreter'] }),
  invalid: { spec: script('', { Interpreter: ['sh'] }), field: 'PluginSpec.script.Source' },
});
