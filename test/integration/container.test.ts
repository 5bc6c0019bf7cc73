/**
 * The container runtime through dist/shoal against a real Docker Engine, as a user drives it:
 * a service-defined health check that fails → the task fails and the orchestrator replaces it
 * (Docker restarts nothing); an image's failing HEALTHCHECK keeps a task from running; a pull
 * failure rejects with the engine's message; `service rm` leaves no container behind.
 * Skipped, with the reason, when no engine answers (CI starts one: .ci/install-docker.sh).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineForTests, HEALTHCHECK_IMAGE, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { type Daemon, tempDaemon, waitFor } from '../harness/index.ts';

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

    test('every ContainerSpec field from the CLI reaches the engine; mounts work', async () => {
      const host = mkdtempSync(join(tmpdir(), 'shoal-it-bind-'));
      chmodSync(host, 0o777);
      const volume = `shoal-it-${Date.now().toString(36)}`;
      try {
        await d.ok('service', 'create', '--name', 'full', '--runtime', 'container', '--init',
          '--mount', `type=bind,source=${host},target=/data`, '--mount', `type=volume,source=${volume},target=/vol`,
          '--mount', 'type=tmpfs,target=/scratch,tmpfs-size=8M', '-u', '1000:1000', '-w', '/data', '-e', 'GREETING=hi',
          '--hostname', 'box1', '--limit-memory', '64M', '--limit-cpu', '0.5', '--stop-signal', 'SIGUSR1', '--stop-grace-period', '3s',
          '--entrypoint', '/bin/sh', TEST_IMAGE, '-c', 'echo "$GREETING from $(hostname) as $(id -u) in $(pwd)" > out.txt; exec sleep 1000');
        const [t] = await d.running('full');
        const info = JSON.parse(docker('inspect', `shoal-${t.ID}`))[0];
        expect(info.Config).toMatchObject({ User: '1000:1000', WorkingDir: '/data', Hostname: 'box1', StopSignal: 'SIGUSR1', StopTimeout: 3, Entrypoint: ['/bin/sh'] });
        expect(info.Config.Env).toContain('GREETING=hi');
        expect(info.HostConfig).toMatchObject({ Memory: 64 * 2 ** 20, NanoCpus: 5e8, Init: true, RestartPolicy: { Name: 'no' } });
        expect(info.Mounts.map((m: any) => [m.Type, m.Destination]).sort()).toEqual([['bind', '/data'], ['tmpfs', '/scratch'], ['volume', '/vol']].sort());
        await waitFor('the program\'s file in the bind mount', () => existsSync(join(host, 'out.txt')));
        await waitFor('its content', () => readFileSync(join(host, 'out.txt'), 'utf8') === 'hi from box1 as 1000 in /data\n');
        await d.ok('service', 'rm', 'full');
        await waitFor('no container of the removed service', () => containersOf(t.ServiceID).length === 0, 30_000);
      } finally {
        rmSync(host, { recursive: true, force: true });
        Bun.spawnSync(['docker', 'volume', 'rm', '-f', volume]);
      }
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
