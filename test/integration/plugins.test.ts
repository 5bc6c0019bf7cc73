/**
 * Third-party executors in the compiled dist/shoal: the example plugin copied into a plugin
 * directory, beside a broken one, as a user installs them. The daemon starts anyway, `shoal plugin
 * ls` shows both (the broken one with its error), and a service of the plugin's runtime runs.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { alive, type Daemon, tempDaemon, waitFor } from '../harness/index.ts';

const pluginDir = mkdtempSync(join(tmpdir(), 'shoal-it-plugins-'));
copyFileSync(resolve(import.meta.dir, '../../plugins/examples/script/script.ts'), join(pluginDir, 'script.ts'));
writeFileSync(join(pluginDir, 'broken.js'), 'throw new Error("this plugin is broken on purpose");');
// A bare package import: a compiled shoal has no node_modules to find it in.
writeFileSync(join(pluginDir, 'needs-package.js'), 'import x from "left-pad"; export default () => x;');
// Fails later, outside anything the loader awaits: a timer that throws and a promise nobody awaits.
writeFileSync(
  join(pluginDir, 'late-failure.js'),
  'export default () => { setTimeout(() => { throw new Error("late throw on purpose"); }, 20); Promise.reject(new Error("late rejection on purpose")); return null; };',
);

let d: Daemon & AsyncDisposable;
beforeAll(async () => {
  d = await tempDaemon(['--plugin-dir', pluginDir]);
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
  rmSync(pluginDir, { recursive: true, force: true });
});

test('plugin ls: the example loaded, the broken ones failed with their errors; the daemon runs', async () => {
  const out = await d.ok('plugin', 'ls');
  const row = (name: string) => out.split('\n').find((l) => l.startsWith(`${name} `)) ?? '';
  expect(row('script')).toMatch(/^script\s+script\s+loaded\s/);
  expect(row('broken')).toMatch(/^broken\s+-\s+failed\s.*this plugin is broken on purpose/);
  expect(row('needs-package')).toMatch(/failed.*left-pad/);
  const json = JSON.parse(await d.ok('plugin', 'ls', '--format', 'json'));
  expect(json.map((p: any) => [p.Name, p.Enabled])).toEqual([['broken', false], ['late-failure', false], ['needs-package', false], ['script', true]]);
  expect(await d.ok('plugin', 'ls', '-q')).toBe('script\n');
  expect(d.output).toContain('this plugin is broken on purpose');
  // The node reports its runtimes when its agent registers, just after the API is up.
  await waitFor('the late failures to be logged', () => d.output.includes('late throw on purpose') && d.output.includes('late rejection on purpose'));
  await waitFor('the node to report the plugin runtime', async () => /Runtimes: .*\bscript\b/.test(await d.ok('info')));
});

test('a service of the plugin\'s runtime runs, logs, and is removed', async () => {
  await d.ok('service', 'create', '--name', 'hello', '--runtime', 'script', '-e', 'WHO=plugin',
    '--plugin-opt', 'Source=echo "hello from the $WHO"; exec sleep 1000');
  const [t] = await d.running('hello');
  expect(t.Spec.PluginSpec.script.Source).toContain('hello from');
  await waitFor('the script\'s output in the service logs', async () => (await d.ok('service', 'logs', 'hello')).includes('hello from the plugin'));
  // service update edits the plugin's own spec: a new task runs the new script.
  await d.ok('service', 'update', '--plugin-opt-add', 'Source=echo "bye from the $WHO"; exec sleep 1000', '--env-add', 'WHO=update', 'hello');
  const [u] = await d.running('hello');
  expect(u.ID).not.toBe(t.ID);
  expect(u.Spec.PluginSpec.script).toEqual({ Source: 'echo "bye from the $WHO"; exec sleep 1000', Env: ['WHO=update'] });
  await waitFor('the updated script\'s output', async () => (await d.ok('service', 'logs', 'hello')).includes('bye from the update'));
  const bad = await d.cli('service', 'update', '--plugin-opt-add', 'Sauce=x', 'hello');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('PluginSpec.script.Sauce: unknown field');
  await d.ok('service', 'rm', 'hello');
  await waitFor('no task of the removed service', async () => (await d.tasks({ service: [t.ServiceID] })).length === 0);
});

test('a kill -9 of the daemon: the plugin\'s task is re-attached by the restarted daemon, not restarted', async () => {
  await d.ok('service', 'create', '--name', 'durable', '--runtime', 'script', '--plugin-opt', 'Source=echo up; exec sleep 1000');
  const [before] = await d.running('durable');
  const pid = before.Status.ContainerStatus.PID as number;
  expect(alive(pid)).toBe(true);
  await d.kill9();
  expect(alive(pid)).toBe(true);
  await d.start(false);
  const after = await waitFor('the task running again', async () => (await d.running('durable'))[0]);
  expect(after.ID).toBe(before.ID);
  expect(alive(pid)).toBe(true);
  expect(await d.ok('plugin', 'ls', '-q')).toBe('script\n');
  await d.ok('service', 'rm', 'durable');
  await waitFor('the script\'s process to end', () => !alive(pid));
});

test('a bad plugin spec is refused at creation, naming the field', async () => {
  const r = await d.cli('service', 'create', '--runtime', 'script', '--plugin-opt', 'Sauce=echo');
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('PluginSpec.script.Sauce: unknown field');
});
