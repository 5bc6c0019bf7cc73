import { expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../test/compliance/fixtures.ts';
import { ExecutorCatalog } from './catalog.ts';
import { loadExecutors } from './loader.ts';

test('loads plugins that get everything from the host object; broken ones are reported', async () => {
  using dir = tempDir();
  writeFileSync(join(dir.path, 'a-echo.js'), `
    export default (host) => ({
      name: 'echo',
      capabilities: { recover: false, stats: false, logsFollow: false, signals: false, isolation: false, runAsUser: false },
      async fingerprint() { return { healthy: true, attributes: { api: String(host.apiVersion) } }; },
      validate: (spec) => spec.PluginSpec?.echo ? null : 'PluginSpec.echo: required',
      controller() { return { start: async () => { throw new host.errors.StartError('echo cannot start'); } }; },
    });`);
  writeFileSync(join(dir.path, 'b-broken.js'), 'export default 42;');
  writeFileSync(join(dir.path, 'c-shapeless.js'), 'export default () => ({ name: "x" });');
  writeFileSync(join(dir.path, 'README.md'), 'not a plugin');
  const catalog = new ExecutorCatalog();
  const logs: string[] = [];
  const report = await loadExecutors(dir.path, catalog, (m) => logs.push(m));
  expect(report.loaded).toEqual([{ file: join(dir.path, 'a-echo.js'), name: 'echo' }]);
  expect(report.failed.map((f) => f.message)).toEqual([
    'the default export must be a function (host) => Executor',
    'executor.capabilities: must be an object',
  ]);
  expect(logs).toHaveLength(2);
  const echo = catalog.get('echo');
  expect(await echo.fingerprint()).toEqual({ healthy: true, attributes: { api: '1' } });
  expect(echo.validate({ Runtime: 'echo' })).toBe('PluginSpec.echo: required');
});

test('a missing plugin directory loads nothing', async () => {
  expect(await loadExecutors('/nonexistent/plugins', new ExecutorCatalog())).toEqual({ loaded: [], failed: [] });
});
