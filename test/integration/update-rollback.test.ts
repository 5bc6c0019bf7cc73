/**
 * Rolling updates through dist/shoal as a user drives them: health-gated rollout, a failing update
 * that rolls itself back, pause and resume, a manual rollback, start-first capacity. Process tasks
 * with a health check the worker runs (`--health-cmd`, with the task's environment), and (when a
 * Docker Engine answers) a container service whose image and env a rollback restores.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineForTests, HEALTHCHECK_IMAGE, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { guestAssets, guestCmdline } from '../fixtures/vm/guest.ts';
import { type Daemon, tempDaemon, waitFor } from '../harness/index.ts';

let d: Daemon & AsyncDisposable;
let marks: string;

beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
  marks = mkdtempSync(join(tmpdir(), 'shoal-upd-'));
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
  rmSync(marks, { recursive: true, force: true });
});

const inspect = async (name: string) => {
  const j = JSON.parse(await d.ok('service', 'inspect', name, '--format', 'json'));
  return Array.isArray(j) ? j[0] : j;
};
const envOf = (t: any): string[] => t.Spec.ProcessSpec?.Env ?? t.Spec.ContainerSpec?.Env ?? [];
/** Quick health checks and a short monitor, so that each rollout takes a moment. */
const FAST = ['--health-interval', '100ms', '--health-retries', '2', '--health-timeout', '2s', '--update-monitor', '500ms', '--rollback-monitor', '500ms', '--restart-delay', '200ms'];

describe('rolling updates through dist/shoal', () => {
  test('an update whose tasks never turn healthy rolls itself back; the CLI names the task and its error', async () => {
    await d.ok('service', 'create', '--name', 'auto', '--replicas', '3', '-e', 'MODE=good', '--health-cmd', 'test "$MODE" = good', ...FAST,
      '--update-failure-action', 'rollback', '--', '/bin/sleep', '3600');
    const before = await d.running('auto');
    expect(before).toHaveLength(3);

    const r = await d.cli('service', 'update', '--env-add', 'MODE=bad', 'auto');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/rollback: (rollback completed \()?update rolled back due to failure or early termination of task/);
    expect(r.stderr).toContain('update rolled back due to failure or early termination of task');
    expect(r.stderr).toContain('task unhealthy after 2 failed health checks');

    const svc = await inspect('auto');
    expect(svc.UpdateStatus.State).toBe('rollback_completed');
    expect(svc.Spec.TaskTemplate.ProcessSpec.Env).toEqual(['MODE=good']);
    expect(svc.PreviousSpec.TaskTemplate.ProcessSpec.Env).toEqual(['MODE=bad']);
    const after = await waitFor('3 healthy tasks of the old spec', async () => {
      const ts = await d.running('auto');
      return ts.length === 3 && ts.every((t) => envOf(t).includes('MODE=good')) ? ts : null;
    });
    // Parallelism 1: only the first slot was tried; the two others kept their tasks throughout.
    expect(after.filter((t) => before.some((b) => b.ID === t.ID))).toHaveLength(2);
    await d.ok('service', 'rm', 'auto');
  }, 60_000);

  test('a failing update pauses (exit non-zero, naming the task); an update with nothing changed resumes it', async () => {
    writeFileSync(join(marks, 'ok-v1'), '');
    await d.ok('service', 'create', '--name', 'paused', '--replicas', '2', '-e', 'V=v1', '--health-cmd', `test -f ${marks}/ok-$V`, ...FAST, '--', '/bin/sleep', '3600');
    const r = await d.cli('service', 'update', '--env-add', 'V=v2', 'paused');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('paused: update paused due to failure or early termination of task');
    expect(r.stderr).toContain('task unhealthy after 2 failed health checks');
    const svc = await inspect('paused');
    expect(svc.UpdateStatus.State).toBe('paused');
    expect(svc.Spec.TaskTemplate.ProcessSpec.Env).toEqual(['V=v2']); // paused, not rolled back
    // The slot not reached yet still runs the old spec.
    expect((await d.running('paused')).filter((t) => envOf(t).includes('V=v1'))).toHaveLength(1);

    writeFileSync(join(marks, 'ok-v2'), ''); // what the new version needed
    const out = await d.ok('service', 'update', 'paused');
    expect(out).toContain('verify: Service converged');
    expect((await inspect('paused')).UpdateStatus.State).toBe('completed');
    const ts = await d.running('paused');
    expect(ts).toHaveLength(2);
    expect(ts.every((t) => envOf(t).includes('V=v2'))).toBe(true);
    await d.ok('service', 'rm', 'paused');
  }, 60_000);

  test('start-first keeps capacity: never fewer running tasks than replicas while it rolls', async () => {
    const replicas = 4;
    const parallelism = 2;
    await d.ok('service', 'create', '--name', 'sf', '--replicas', String(replicas), '-e', 'V=1', '--health-cmd', 'true', ...FAST,
      '--update-order', 'start-first', '--update-parallelism', String(parallelism), '--', '/bin/sleep', '3600');
    let lowest = Infinity;
    let samples = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        const ts = await d.tasks({ service: ['sf'] });
        lowest = Math.min(lowest, ts.filter((t) => t.Status.State === 'running').length);
        samples++;
      }
    })();
    const out = await d.ok('service', 'update', '--env-add', 'V=2', 'sf');
    done = true;
    await watch;
    expect(out).toContain(`${replicas}/${replicas}: running`);
    expect(out).toContain('verify: Service converged');
    expect(samples).toBeGreaterThan(1);
    expect(lowest).toBeGreaterThanOrEqual(replicas); // start-first: a task stops only once its successor runs
    expect(lowest).toBeGreaterThanOrEqual(replicas - parallelism);
    const ts = await d.running('sf');
    expect(ts.every((t) => envOf(t).includes('V=2'))).toBe(true);
    await d.ok('service', 'rm', 'sf');
  }, 60_000);

  test('rollback with no previous spec is refused, naming the field; bad update flags name the flag', async () => {
    await d.ok('service', 'create', '--name', 'fresh', '--detach', '--', '/bin/sleep', '3600');
    const r = await d.cli('service', 'rollback', 'fresh');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('rollback: service "fresh" has no previous spec');
    const bad = await d.cli('service', 'update', '--update-max-failure-ratio', '2', 'fresh');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--update-max-failure-ratio');
    const api = await d.api('/services/create', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Name: 'x', TaskTemplate: { ProcessSpec: { Command: ['/bin/true'] } }, UpdateConfig: { Parallelism: -1 } }) });
    expect(api.status).toBe(400);
    expect(((await api.json()) as { message: string }).message).toStartWith('UpdateConfig.Parallelism:');
    await d.ok('service', 'rm', 'fresh');
  });
});

const engine = await engineForTests();
describe('rolling updates of containers', () => {
  if (!engine.ok) {
    test.skip(`needs a Docker Engine: ${engine.reason}`, () => {});
    return;
  }
  test('a manual rollback restores the previous image and env', async () => {
    await d.ok('service', 'create', '--name', 'ctr', '--runtime', 'container', '--replicas', '2', '-e', 'V=1', '--update-monitor', '300ms',
      '--rollback-monitor', '300ms', '--rollback-parallelism', '0', '--stop-grace-period', '1s', TEST_IMAGE, 'sleep', '3600');
    await d.ok('service', 'update', '--image', HEALTHCHECK_IMAGE, '--no-healthcheck', '--env-add', 'V=2', 'ctr');
    const v2 = await d.running('ctr');
    expect(v2.every((t) => t.Spec.ContainerSpec.Image === HEALTHCHECK_IMAGE && envOf(t).includes('V=2'))).toBe(true);

    const out = await d.ok('service', 'rollback', 'ctr');
    expect(out).toMatch(/rollback: (rollback completed \()?manually requested rollback/);
    expect(out).toContain('verify: Service converged');
    const svc = await inspect('ctr');
    expect(svc.UpdateStatus.State).toBe('rollback_completed');
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(TEST_IMAGE);
    expect(svc.Spec.TaskTemplate.ContainerSpec.Env).toEqual(['V=1']);
    expect(svc.PreviousSpec.TaskTemplate.ContainerSpec.Image).toBe(HEALTHCHECK_IMAGE);
    const ts = await d.running('ctr');
    expect(ts).toHaveLength(2);
    expect(ts.every((t) => t.Spec.ContainerSpec.Image === TEST_IMAGE && envOf(t).includes('V=1'))).toBe(true);
    await d.ok('service', 'rm', 'ctr');
  }, 90_000);

  test('an image whose HEALTHCHECK fails: the update rolls back by itself', async () => {
    await d.ok('service', 'create', '--name', 'chc', '--runtime', 'container', '--update-failure-action', 'rollback', '--update-monitor', '300ms',
      '--rollback-monitor', '300ms', '--restart-delay', '200ms', '--stop-grace-period', '1s', TEST_IMAGE, 'sleep', '3600');
    const r = await d.cli('service', 'update', '--image', HEALTHCHECK_IMAGE, 'chc');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('update rolled back due to');
    expect(r.stderr).toContain('unhealthy');
    const svc = await inspect('chc');
    expect(svc.UpdateStatus.State).toBe('rollback_completed');
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(TEST_IMAGE);
    await d.ok('service', 'rm', 'chc');
  }, 90_000);
});

const assets = guestAssets();
describe('health-gated VM tasks', () => {
  if (typeof assets === 'string') {
    test.skip(`needs QEMU and a guest kernel: ${assets}`, () => {});
    return;
  }
  test('a VM task with a health check is running only once the check passes', async () => {
    const probed = join(marks, 'vm-probed');
    const ready = join(marks, 'vm-ready');
    await d.ok('service', 'create', '--name', 'vmh', '--runtime', 'vm', '--kernel', assets.kernel, '--initrd', assets.initrd,
      '--cmdline', guestCmdline('sleep 3600'), '--health-cmd', `touch ${probed}; test -f ${ready}`, '--health-interval', '100ms',
      '--health-retries', '1000', '--stop-grace-period', '1s', '--detach');
    await waitFor('the worker probing the VM', () => existsSync(probed), 60_000);
    const [t] = await d.tasks({ service: ['vmh'] });
    expect(t.Status.State).toBe('starting'); // booted, probed, not healthy yet
    writeFileSync(ready, '');
    await waitFor('the VM task running', async () => (await d.running('vmh')).length === 1, 30_000);
    await d.ok('service', 'rm', 'vmh');
  }, 120_000);
});
