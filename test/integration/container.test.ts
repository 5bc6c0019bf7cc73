/**
 * The container runtime through dist/shoal against a real Docker Engine, as a user drives it:
 * a service-defined health check that fails → the task fails and the orchestrator replaces it
 * (Docker restarts nothing); an image's failing HEALTHCHECK keeps a task from running; a pull
 * failure rejects with the engine's message; `service rm` leaves no container behind.
 * Skipped, with the reason, when no engine answers (CI starts one: .ci/install-docker.sh).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { engineForTests, HEALTHCHECK_IMAGE, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { type Daemon, tempDaemon, waitFor } from './harness.ts';

const engine = await engineForTests();

function docker(...args: string[]): string {
  const r = Bun.spawnSync(['docker', ...args], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
}
const containersOf = (serviceId: string) => docker('ps', '-aq', '--filter', `label=io.shoal.service.id=${serviceId}`).split('\n').filter(Boolean);

if (!engine.ok) {
  describe('container runtime through dist/shoal', () => {
    test.skip(`needs a Docker Engine: ${engine.reason}`, () => {});
  });
} else {
  let d: Daemon & AsyncDisposable;
  beforeAll(async () => {
    d = await tempDaemon();
    await d.start();
  });
  afterAll(async () => {
    await d?.[Symbol.asyncDispose]();
  });

  describe('container runtime through dist/shoal', () => {
    test('a service-defined health check that fails: the task fails and the orchestrator replaces it', async () => {
      await d.ok('service', 'create', '--name', 'hc', '--runtime', 'container', '--init', '--restart-delay', '100ms',
        '--health-cmd', 'test -f /tmp/ok', '--health-interval', '200ms', '--health-timeout', '1s', '--health-retries', '1',
        TEST_IMAGE, 'sh', '-c', 'touch /tmp/ok; exec sleep 1000');
      const [first] = await d.running('hc');
      const name = `shoal-${first.ID}`;
      expect(docker('inspect', '-f', '{{.HostConfig.RestartPolicy.Name}} {{.State.Health.Status}}', name)).toBe('no healthy');
      docker('exec', name, 'rm', '/tmp/ok');
      const next = await waitFor('a replacement task running', async () => (await d.running('hc')).find((t) => t.ID !== first.ID), 30_000);
      expect(next.Slot).toBe(first.Slot);
      const old = (await d.tasks({ service: ['hc'] })).find((t) => t.ID === first.ID);
      expect(old.Status.State).toBe('failed');
      expect(old.Status.Err).toContain('unhealthy');
      const svc = next.ServiceID as string;
      await d.ok('service', 'rm', 'hc');
      await waitFor('no container of the removed service', () => containersOf(svc).length === 0, 30_000);
    });

    test('an image HEALTHCHECK that fails keeps the task from running; --no-healthcheck turns it off', async () => {
      await d.ok('service', 'create', '--name', 'sick', '--runtime', 'container', '-d', '--restart-condition', 'none', '--init', HEALTHCHECK_IMAGE, 'sleep', '1000');
      const failed = await waitFor('the task to fail', async () => (await d.tasks({ service: ['sick'] })).find((t) => t.Status.State === 'failed'), 30_000);
      expect(failed.Status.Err).toContain('unhealthy');
      await d.ok('service', 'create', '--name', 'cured', '--runtime', 'container', '--no-healthcheck', '--init', HEALTHCHECK_IMAGE, 'sleep', '1000');
      expect(await d.running('cured')).toHaveLength(1);
      await d.ok('service', 'rm', 'sick', 'cured');
    });

    test('a pull failure rejects the task with the engine\'s message', async () => {
      await d.ok('service', 'create', '--name', 'nopull', '--runtime', 'container', '-d', '--restart-condition', 'none', 'shoal-test/does-not-exist:1');
      const t = await waitFor('the task rejected', async () => (await d.tasks({ service: ['nopull'] })).find((x) => x.Status.State === 'rejected'), 60_000);
      expect(t.Status.Err).toContain('ContainerSpec.Image: cannot pull "shoal-test/does-not-exist:1"');
      expect(t.Status.Err.length).toBeGreaterThan('ContainerSpec.Image: cannot pull "shoal-test/does-not-exist:1": '.length);
      await d.ok('service', 'rm', 'nopull');
    });

    test('service rm leaves no container; task, service and node labels are on each', async () => {
      await d.ok('service', 'create', '--name', 'many', '--runtime', 'container', '--replicas', '3', '--init', '--container-label', 'team=a', TEST_IMAGE, 'sleep', '1000');
      const tasks = await d.running('many');
      const svc = tasks[0].ServiceID as string;
      expect(containersOf(svc)).toHaveLength(3);
      const labels = JSON.parse(docker('inspect', '-f', '{{json .Config.Labels}}', `shoal-${tasks[0].ID}`));
      expect(labels).toMatchObject({ 'io.shoal.task.id': tasks[0].ID, 'io.shoal.service.id': svc, 'io.shoal.node.id': tasks[0].NodeID, team: 'a' });
      await d.ok('service', 'rm', 'many');
      await waitFor('no container of the removed service', () => containersOf(svc).length === 0, 30_000);
    });
  });
}
