import { expect, test } from 'bun:test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../test/compliance/fixtures.ts';
import { builtinCatalog, ExecutorCatalog } from './catalog.ts';
import { EXECUTOR_HOST_API_VERSION, loadExecutors } from './loader.ts';

const ECHO = `
  export default (host) => ({
    name: 'echo',
    capabilities: { recover: false, stats: false, logsFollow: false, signals: false, isolation: false, runAsUser: false },
    async fingerprint() { return { healthy: true, attributes: { api: String(host.apiVersion), procs: typeof host.processes.controller } }; },
    validate(spec) {
      if (spec.PluginSpec?.explode) throw new Error('kaboom');
      return spec.PluginSpec?.echo ? null : 'PluginSpec.echo: required';
    },
    controller() { return { start: async () => { throw new host.errors.StartError('echo cannot start'); } }; },
  });`;

test('loads plugins that get everything from the host object; broken ones are reported, not fatal', async () => {
  using dir = tempDir();
  const p = (f: string) => join(dir.path, f);
  writeFileSync(p('a-echo.js'), ECHO);
  writeFileSync(p('b-broken.js'), 'export default 42;');
  writeFileSync(p('c-shapeless.js'), 'export default () => ({ name: "x" });');
  writeFileSync(p('d-syntax.ts'), 'export default (host => {');
  writeFileSync(p('e-throws.mjs'), 'throw new Error("no license key");');
  writeFileSync(p('f-bare-import.js'), 'import x from "left-pad-not-installed"; export default () => x;');
  writeFileSync(p('g-taken.js'), ECHO.replace("name: 'echo'", "name: 'process'"));
  writeFileSync(p('README.md'), 'not a plugin');
  writeFileSync(p('types.d.ts'), 'export {};');
  mkdirSync(p('h-dir.js'));
  const catalog = builtinCatalog();
  const logs: string[] = [];
  const report = await loadExecutors(dir.path, catalog, (m) => logs.push(m));
  expect(report.dir).toBe(dir.path);
  expect(report.plugins.map((r) => [r.file.slice(dir.path.length + 1), r.runtime ?? r.error])).toEqual([
    ['a-echo.js', 'echo'],
    ['b-broken.js', 'the default export must be a function (host) => Executor'],
    ['c-shapeless.js', 'executor.capabilities: must be an object'],
    ['d-syntax.ts', expect.any(String)],
    ['e-throws.mjs', 'no license key'],
    ['f-bare-import.js', expect.stringContaining('left-pad-not-installed')],
    ['g-taken.js', 'executor "process" is already registered'],
    ['h-dir.js', 'not a regular file'],
  ]);
  expect(logs.filter((l) => l.includes('not loaded'))).toHaveLength(7);
  const echo = catalog.get('echo');
  expect(await echo.fingerprint()).toEqual({ healthy: true, attributes: { api: String(EXECUTOR_HOST_API_VERSION), procs: 'function' } });
  expect(echo.validate({ Runtime: 'echo' })).toBe('PluginSpec.echo: required');
  expect(catalog.validate({ Runtime: 'echo', PluginSpec: { explode: true } })).toBe('TaskTemplate.Runtime: the "echo" plugin could not check this spec: kaboom');
});

test('a missing plugin directory loads nothing; an unreadable one is one failed record', async () => {
  expect(await loadExecutors('/nonexistent/plugins', new ExecutorCatalog())).toEqual({ dir: '/nonexistent/plugins', plugins: [] });
  using dir = tempDir();
  const file = join(dir.path, 'plugins');
  writeFileSync(file, 'a file, not a directory');
  const r = await loadExecutors(file, new ExecutorCatalog());
  expect(r.plugins).toEqual([{ file, error: expect.stringContaining(`plugin directory ${file}: ENOTDIR`) }]);
});
