/**
 * Issue 16: the swarm-mode commands of the stock docker CLI against dist/shoal, each one's output
 * read back and checked against the API (docs/api.md, "docker CLI compatibility", lists them).
 * Two fresh daemons on loopback: `docker swarm init` on the first, `docker swarm join` from the
 * second. Skipped, with the reason, where no docker CLI is installed (it needs no docker daemon);
 * the service part also needs a Docker Engine for its container tasks (CI starts one).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineForTests, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { Daemon, runDocker, type DockerRun, freePort, waitFor } from '../harness/index.ts';

const dockerCli = Bun.which('docker');
const engine = dockerCli ? await engineForTests() : { ok: false as const, reason: 'no docker CLI' };

type Run = DockerRun;

function docker(d: Daemon, args: string[], timeoutMs = 30_000): Promise<Run> {
  return runDocker(d, args, { timeoutMs });
}

/** The command must succeed; its stdout, trimmed. */
async function ok(d: Daemon, ...args: string[]): Promise<string> {
  const r = await docker(d, args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.err}${r.out}`);
  return r.out.trim();
}

/** The command must fail; what it printed. */
async function fails(d: Daemon, ...args: string[]): Promise<string> {
  const r = await docker(d, args);
  if (r.code === 0) throw new Error(`docker ${args.join(' ')} succeeded: ${r.out}`);
  return r.err + r.out;
}

const ip1 = '127.0.0.1';
const ip2 = '127.0.0.2';
const addr1 = `${ip1}:${freePort(ip1)}`;
const addr2 = `${ip2}:${freePort(ip2)}`;
let d1: Daemon;
let d2: Daemon;
let workerId = '';

if (!dockerCli) {
  describe('the docker CLI in swarm mode', () => {
    test.skip('needs the docker CLI on PATH (Debian\'s docker.io, installed by .ci/install-docker.sh)', () => {});
  });
}

describe.skipIf(!dockerCli)('the docker CLI in swarm mode', () => {
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-dockercli-'));
    d1 = new Daemon(join(dir, 'h1'), ['--listen-addr', addr1, '--mesh-addr', ip1], { name: 'h1', ownsDataDir: true });
    d2 = new Daemon(join(dir, 'h2'), ['--listen-addr', addr2, '--mesh-addr', ip2], { name: 'h2', ownsDataDir: true });
    await Promise.all([d1.start(false), d2.start(false)]);
  });
  afterAll(async () => {
    await d2?.[Symbol.asyncDispose]();
    await d1?.[Symbol.asyncDispose]();
  });

  test('swarm init, join-token, ca, join; node ls/inspect/update/promote/demote/ps; swarm leave; node rm', async () => {
    expect(await ok(d1, 'system', 'info', '--format', '{{.Swarm.LocalNodeState}}')).toBe('inactive');
    const init = await ok(d1, 'swarm', 'init', '--listen-addr', addr1, '--advertise-addr', addr1);
    const selfId = (await d1.json('/info')).Swarm.NodeID as string;
    expect(init).toContain(`Swarm initialized: current node (${selfId}) is now a manager.`);
    expect(await ok(d1, 'node', 'inspect', 'self', '--format', '{{.ID}} {{.ManagerStatus.Leader}}')).toBe(`${selfId} true`);
    expect(await ok(d1, 'system', 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')).toBe('active true');

    const swarm = await d1.json('/swarm');
    const token = await ok(d1, 'swarm', 'join-token', '-q', 'worker');
    expect(token).toBe(swarm.JoinTokens.Worker);
    expect(await ok(d1, 'swarm', 'join-token', 'manager')).toContain(`docker swarm join --token ${swarm.JoinTokens.Manager} ${addr1}`);
    const ca = await ok(d1, 'swarm', 'ca');
    expect(ca).toStartWith('-----BEGIN CERTIFICATE-----');
    expect(ca).toBe(swarm.TLSInfo.TrustRoot.trim());

    expect(await ok(d2, 'swarm', 'join', '--token', token, '--listen-addr', addr2, '--advertise-addr', addr2, addr1)).toBe('This node joined a swarm as a worker.');
    await waitFor('both nodes ready in docker node ls', async () => (await ok(d1, 'node', 'ls', '--format', '{{.Status}}')) === 'Ready\nReady');
    workerId = await ok(d1, 'node', 'ls', '-q', '--filter', 'role=worker');
    expect(await ok(d2, 'system', 'info', '--format', '{{.Swarm.NodeID}}')).toBe(workerId);
    const ls = (await ok(d1, 'node', 'ls', '--format', '{{.ID}} {{.Self}} {{.ManagerStatus}}')).split('\n').map((l) => l.trim()).sort();
    expect(ls).toEqual([`${selfId} true Leader`, `${workerId} false`].sort());
    expect(await ok(d2, 'system', 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')).toBe('active false');

    await ok(d1, 'node', 'update', '--availability', 'drain', '--label-add', 'zone=b', workerId);
    expect(await ok(d1, 'node', 'inspect', workerId, '--format', '{{.Spec.Availability}} {{.Spec.Labels.zone}}')).toBe('drain b');
    await ok(d1, 'node', 'update', '--availability', 'active', workerId);
    expect((await ok(d1, 'node', 'inspect', '--pretty', workerId))).toMatch(/Availability:\s+Active/);
    expect(await ok(d1, 'node', 'ps', workerId)).toStartWith('ID');

    expect(await ok(d1, 'node', 'promote', workerId)).toBe(`Node ${workerId} promoted to a manager in the swarm.`);
    await waitFor('the promoted node reachable', async () => (await ok(d1, 'node', 'inspect', workerId, '--format', '{{.ManagerStatus.Reachability}}')) === 'reachable', 30_000);
    await waitFor('the promoted node in control', async () => (await ok(d2, 'system', 'info', '--format', '{{.Swarm.ControlAvailable}}')) === 'true', 30_000);
    expect(await ok(d1, 'node', 'demote', workerId)).toBe(`Manager ${workerId} demoted in the swarm.`);
    expect(await ok(d1, 'node', 'inspect', workerId, '--format', '{{.Spec.Role}}')).toBe('worker');
    // The store says worker at once; the host itself stops its manager part a moment later.
    await waitFor('the demoted host a worker again', async () => d2.output.includes('this node is a worker now'), 30_000);
    expect(await ok(d2, 'system', 'info', '--format', '{{.Swarm.ControlAvailable}}')).toBe('false');
    expect(await ok(d1, 'node', 'ls', '--filter', `id=${workerId}`, '--format', '{{.ManagerStatus}}')).toBe('');
    expect(await ok(d1, 'system', 'info', '--format', '{{.Swarm.Managers}} {{len .Swarm.RemoteManagers}}')).toBe('1 1');

    expect(await ok(d2, 'swarm', 'leave')).toBe('Node left the swarm.');
    await waitFor('the node that left down', async () => (await ok(d1, 'node', 'inspect', workerId, '--format', '{{.Status.State}}')) === 'down', 30_000);
    expect(await ok(d1, 'node', 'rm', workerId)).toBe(workerId);
    expect(await ok(d1, 'node', 'ls', '-q')).toBe(selfId);

    expect(await ok(d1, 'swarm', 'join-token', '--rotate', 'worker')).toContain('Successfully rotated worker join token.');
    const rotated = await ok(d1, 'swarm', 'join-token', '-q', 'worker');
    expect(rotated).not.toBe(token);
    expect(rotated).toBe((await d1.json('/swarm')).JoinTokens.Worker);
  }, 120_000);

  test('swarm update, unlock-key and unlock without autolock (docker-autolock.test.ts has it on); system df (swarm ca --rotate: docker-ca.test.ts)', async () => {
    expect(await ok(d1, 'swarm', 'update', '--task-history-limit', '3')).toBe('Swarm updated.');
    expect(await ok(d1, 'system', 'info', '--format', '{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}')).toBe('3');
    expect(await fails(d1, 'swarm', 'unlock-key')).toContain('no unlock key is set');
    expect(await fails(d1, 'swarm', 'unlock')).toContain('swarm is not locked');
    const df = await ok(d1, 'system', 'df');
    expect(df).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
    expect(df).toMatch(/Images\s+0\s+0\s+0B/);
  });

  test('network, secret and config: create, ls, inspect, rm', async () => {
    const netId = await ok(d1, 'network', 'create', '--driver', 'overlay', '--attachable', '--subnet', '10.77.0.0/24', 'dkn');
    expect(await ok(d1, 'network', 'ls', '--filter', 'name=dkn', '--format', '{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}')).toBe(`${netId.slice(0, 12)} dkn overlay swarm`);
    expect(await ok(d1, 'network', 'inspect', 'dkn', '--format', '{{.Attachable}} {{(index .IPAM.Config 0).Subnet}}')).toBe('true 10.77.0.0/24');
    expect(await ok(d1, 'network', 'rm', 'dkn')).toBe('dkn');
    expect(await fails(d1, 'network', 'inspect', 'dkn')).toContain('dkn');

    const secretFile = join(d1.dataDir, 'secret.txt');
    await Bun.write(secretFile, 'hush');
    const sid = await ok(d1, 'secret', 'create', '--label', 'k=v', 'dks', secretFile);
    expect(await ok(d1, 'secret', 'ls', '--format', '{{.ID}} {{.Name}}')).toBe(`${sid} dks`);
    // Docker never gives a secret's data back.
    expect(await ok(d1, 'secret', 'inspect', 'dks', '--format', '{{.Spec.Name}} {{.Spec.Labels.k}} {{json .Spec.Data}}')).toBe('dks v null');
    expect(await ok(d1, 'secret', 'rm', 'dks')).toBe('dks');
    expect(await ok(d1, 'secret', 'ls', '-q')).toBe('');

    const cid = await ok(d1, 'config', 'create', 'dkc', secretFile);
    expect(await ok(d1, 'config', 'ls', '--format', '{{.ID}} {{.Name}}')).toBe(`${cid} dkc`);
    expect(await ok(d1, 'config', 'inspect', 'dkc', '--format', '{{printf "%s" .Spec.Data}}')).toBe('hush');
    expect(await ok(d1, 'config', 'inspect', '--pretty', 'dkc')).toMatch(/Name:\s+dkc[\s\S]*Data:\s+hush/);
    expect(await ok(d1, 'config', 'rm', 'dkc')).toBe('dkc');
  });

  describe.skipIf(!engine.ok)(`container services${engine.ok ? '' : ` (skipped: ${engine.reason})`}`, () => {
    test('service create (progress display), ls, ps, inspect, logs, scale, update, rollback, rm; node ps; events', async () => {
      // Without --detach the CLI follows the tasks through the API, as against Docker, until converged.
      const created = await docker(d1, ['service', 'create', '--name', 'dkweb', '--replicas', '1', '--update-monitor', '1s', '--stop-grace-period', '1s', TEST_IMAGE, 'sh', '-c', 'echo hello from $HOSTNAME; while true; do sleep 1; done'], 60_000);
      expect(created.code).toBe(0);
      const all = created.out + created.err;
      expect(all).toContain('overall progress: 1 out of 1 tasks');
      const svcId = (await d1.json('/services/dkweb')).ID as string;
      expect(all).toContain(`verify: Service ${svcId} converged`);

      expect(await ok(d1, 'service', 'ls', '--format', '{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}')).toBe(`dkweb replicated 1/1 ${TEST_IMAGE}`);
      expect(await ok(d1, 'service', 'inspect', 'dkweb', '--format', '{{.ID}} {{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.ContainerSpec.Image}}')).toBe(`${svcId} 1 ${TEST_IMAGE}`);
      expect(await ok(d1, 'service', 'ps', 'dkweb', '--format', '{{.Name}} {{.DesiredState}} {{.Node}}')).toMatch(/^dkweb\.1 Running \S+$/);
      expect(await ok(d1, 'node', 'ps', 'self', '--format', '{{.Name}} {{.DesiredState}}')).toBe('dkweb.1 Running');
      expect(await ok(d1, 'service', 'inspect', '--pretty', 'dkweb')).toMatch(/Name:\s+dkweb[\s\S]*Replicated[\s\S]*Image:\s+shoal-test\/busybox:latest/);

      const logs = await waitFor('the task\'s line in docker service logs', async () => {
        const r = await docker(d1, ['service', 'logs', 'dkweb']);
        return /dkweb\.1\.\w+@\S+\s+\| hello from /.test(r.out) ? r.out : null;
      });
      expect(logs).toContain('hello from');

      const scaled = await docker(d1, ['service', 'scale', 'dkweb=2'], 60_000);
      expect(scaled.code).toBe(0);
      expect(scaled.out + scaled.err).toContain('dkweb scaled to 2');
      expect(scaled.out + scaled.err).toContain('verify: Service dkweb converged');
      expect(await ok(d1, 'service', 'ls', '--format', '{{.Replicas}}')).toBe('2/2');

      await ok(d1, 'service', 'update', '--detach', '--env-add', 'A=1', 'dkweb');
      expect(await ok(d1, 'service', 'inspect', 'dkweb', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}}')).toBe('["A=1"]');
      await ok(d1, 'service', 'rollback', '--detach', 'dkweb');
      expect(await ok(d1, 'service', 'inspect', 'dkweb', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}} {{json .PreviousSpec.TaskTemplate.ContainerSpec.Env}}')).toBe('null ["A=1"]');

      const until = String(Math.ceil(Date.now() / 1000) + 1);
      const events = await ok(d1, 'events', '--since', '0', '--until', until, '--filter', 'type=service', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}');
      expect(events.split('\n')).toContain('service create dkweb');
      expect(events.split('\n').every((l) => l.startsWith('service '))).toBe(true);

      expect(await ok(d1, 'service', 'rm', 'dkweb')).toBe('dkweb');
      await waitFor('dkweb gone', async () => (await d1.api('/services/dkweb')).status === 404);
      expect(await ok(d1, 'service', 'ls', '-q')).toBe('');
      // The engine's own view (its usual DOCKER_HOST): the tasks' containers go with the service.
      await waitFor('no container of dkweb left in the engine', async () => {
        const p = Bun.spawn(['docker', 'ps', '-aq', '--filter', `label=io.shoal.service.id=${svcId}`], { stdout: 'pipe', stderr: 'pipe' });
        const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
        return code === 0 && out.trim() === '';
      }, 30_000);
    }, 120_000);
  });
});
