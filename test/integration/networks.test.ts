/**
 * Overlay networks through dist/shoal: the objects, allocation as `service inspect` and the tasks show
 * it, and the refusals a user meets. (The per-host plumbing is tested in src/mesh/overlay.test.ts; the
 * worker does not build it yet.)
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Daemon, runDocker, tempDaemon, waitFor } from '../harness/index.ts';

let d: Daemon & AsyncDisposable;

beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
});

const hasDocker = Bun.which('docker') !== null;

async function docker(...args: string[]): Promise<{ code: number; out: string }> {
  const r = await runDocker(d, args, { timeoutMs: 120_000 });
  return { code: r.code, out: r.out + r.err };
}

const inspect = async (kind: string, ref: string) => JSON.parse(await d.ok(kind, 'inspect', ref))[0];

describe('overlay networks through the CLI', () => {
  test('create with and without a subnet; ls as a table and as JSON; bad input names the field', async () => {
    const id = (await d.ok('network', 'create', '--driver', 'overlay', '--label', 'team=a', 'front')).trim();
    expect(id).toMatch(/^[a-z0-9]{25}$/);
    await d.ok('network', 'create', '--subnet', '10.20.0.0/24', '--gateway', '10.20.0.254', 'back');
    const front = await waitFor('front to get a subnet', async () => (await inspect('network', 'front')).IPAM.Config[0]);
    expect(front).toEqual({ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' });
    const n = await inspect('network', id.slice(0, 8));
    expect(n).toMatchObject({ Name: 'front', Id: id, Driver: 'overlay', Scope: 'swarm', Labels: { team: 'a' } });
    expect(n.Options['com.docker.network.driver.overlay.vxlanid_list']).toMatch(/^\d+$/);
    expect((await inspect('network', 'back')).IPAM.Config).toEqual([{ Subnet: '10.20.0.0/24', Gateway: '10.20.0.254' }]);
    const table = await d.ok('network', 'ls');
    expect(table.split('\n')[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\s+SUBNET$/);
    expect(table).toMatch(/back\s+overlay\s+swarm\s+10\.20\.0\.0\/24/);
    expect(JSON.parse(await d.ok('network', 'ls', '--format', 'json')).map((x: any) => x.Name)).toEqual(['back', 'front']);
    expect((await d.ok('network', 'ls', '-q', '-f', 'label=team=a')).trim()).toBe(id);

    const dup = await d.cli('network', 'create', 'front');
    expect(dup).toMatchObject({ code: 1, stderr: 'Error: network with name front already exists\n' });
    const overlap = await d.cli('network', 'create', '--subnet', '10.20.0.128/25', 'x');
    expect(overlap.stderr).toContain('IPAM.Config[0].Subnet: 10.20.0.128/25 overlaps 10.20.0.0/24 of network back');
    expect((await d.cli('network', 'create', '--subnet', '10.30.0.0/30', 'x')).stderr).toContain('is too small');
    expect((await d.cli('network', 'create', '--subnet', '10.30.0.0', 'x')).stderr).toContain('not in CIDR notation');
    expect((await d.cli('network', 'create', '--driver', 'bridge', 'x')).stderr).toContain('Driver: "bridge" is not supported');
    expect((await d.cli('network', 'inspect', 'nope')).stderr).toBe('Error: network nope not found\n');
  });

  test('a service on two networks: a VIP on each, every task an address on each; rm refused while in use', async () => {
    await d.ok('service', 'create', '--name', 'web', '--replicas', '3', '--network', 'front', '--network', 'back', '--', '/bin/sleep', '3600');
    const svc = await inspect('service', 'web');
    const [front, back] = [await inspect('network', 'front'), await inspect('network', 'back')];
    expect(svc.Spec.TaskTemplate.Networks).toEqual([{ Target: front.Id }, { Target: back.Id }]);
    expect(svc.Endpoint.VirtualIPs).toEqual([{ NetworkID: front.Id, Addr: '10.0.1.2/24' }, { NetworkID: back.Id, Addr: '10.20.0.1/24' }]);
    const tasks = await d.running('web');
    expect(tasks).toHaveLength(3);
    const on = (id: string) => tasks.map((t) => t.NetworksAttachments.find((a: any) => a.Network.ID === id).Addresses[0]).sort();
    expect(on(front.Id)).toEqual(['10.0.1.3/24', '10.0.1.4/24', '10.0.1.5/24']);
    expect(on(back.Id)).toEqual(['10.20.0.2/24', '10.20.0.3/24', '10.20.0.4/24']);

    const refused = await d.cli('network', 'rm', 'front');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('network front is in use by service web');
    const unknown = await d.cli('service', 'create', '--name', 'lost', '--network', 'nowhere', '--detach', '--', '/bin/sleep', '1');
    expect(unknown.stderr).toContain('TaskTemplate.Networks[0].Target: network nowhere not found');

    // Leaving a network releases the service's VIP on it; the new tasks have an address on front only.
    await d.ok('service', 'update', '--network-rm', 'back', 'web');
    await waitFor('web off back', async () => {
      const s = await inspect('service', 'web');
      const running = await d.running('web');
      return s.Endpoint.VirtualIPs.length === 1 && running.length === 3 && running.every((t) => t.NetworksAttachments.length === 1);
    });
    await waitFor('the old tasks to stop', async () => (await d.tasks({ service: ['web'] })).every((t) => t.DesiredState === 'running' || t.Status.State !== 'running'));
    expect((await d.ok('network', 'rm', 'back')).trim()).toBe('back');

    await d.ok('service', 'rm', 'web');
    await waitFor('front to be removable once web is gone', async () => (await d.cli('network', 'rm', 'front')).code === 0);
    expect(JSON.parse(await d.ok('network', 'ls', '--format', 'json'))).toEqual([]);
  });

  test('a network too small for every task: the last one waits, new, with the reason in service ps', async () => {
    await d.ok('network', 'create', '--subnet', '10.40.0.0/29', 'tiny'); // gateway, VIP, 4 tasks
    await d.ok('service', 'create', '--name', 'crowd', '--replicas', '5', '--network', 'tiny', '--detach', '--', '/bin/sleep', '3600');
    await waitFor('4 running', async () => (await d.running('crowd')).length === 4);
    const waiting = await waitFor('one task waiting with a reason', async () => (await d.tasks({ service: ['crowd'] })).find((t) => t.Status.State === 'new' && t.Status.Err));
    expect(waiting.Status.Err).toBe('cannot allocate task: network "tiny" has no free address left in 10.40.0.0/29; remove tasks from it or create a larger network');
    expect(await d.ok('service', 'ps', 'crowd')).toContain('has no free address left in 10.40.0.0/29');
    await d.ok('service', 'scale', '--detach', 'crowd=4');
    await d.ok('service', 'rm', 'crowd');
    await waitFor('tiny removable', async () => (await d.cli('network', 'rm', 'tiny')).code === 0);
  });
});

describe('published ports (issue 6, item 1) through the CLI', () => {
  test('explicit and allocated ports in service inspect and ls; a taken port is refused naming its holder', async () => {
    await d.ok('service', 'create', '--name', 'pub', '--detach', '-p', '18080:80', '-p', 'target=81', '--publish', 'published=19090,target=90,protocol=udp,mode=host', '--', '/bin/sleep', '3600');
    const ports = await waitFor('ports allocated', async () => (await inspect('service', 'pub')).Endpoint?.Ports?.find((p: any) => p.TargetPort === 81)?.PublishedPort && (await inspect('service', 'pub')).Endpoint.Ports);
    expect(ports).toEqual([
      { TargetPort: 80, PublishedPort: 18080, Protocol: 'tcp', PublishMode: 'ingress' },
      { TargetPort: 81, PublishedPort: 30000, Protocol: 'tcp', PublishMode: 'ingress' },
      { TargetPort: 90, PublishedPort: 19090, Protocol: 'udp', PublishMode: 'host' },
    ]);
    expect(await d.ok('service', 'ls')).toContain('*:18080->80/tcp, *:30000->81/tcp, *:19090->90/udp');
    const taken = await d.cli('service', 'create', '--name', 'pub2', '--detach', '-p', '18080:80', '--', '/bin/sleep', '3600');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('port 18080/tcp is already in use by service "pub"');
    await d.ok('service', 'rm', 'pub');
  });
});

describe.skipIf(!hasDocker)('the docker CLI', () => {
  test('docker network create -d overlay / ls / inspect / rm', async () => {
    expect(await docker('network', 'create', '-d', 'overlay', '--subnet', '10.44.0.0/24', 'dnet')).toMatchObject({ code: 0 });
    expect((await docker('network', 'ls')).out).toMatch(/dnet\s+overlay\s+swarm/);
    const n = JSON.parse((await docker('network', 'inspect', 'dnet')).out)[0];
    expect(n).toMatchObject({ Name: 'dnet', Driver: 'overlay', Scope: 'swarm', IPAM: { Config: [{ Subnet: '10.44.0.0/24', Gateway: '10.44.0.1' }] } });
    const bridge = await docker('network', 'create', 'plain');
    expect(bridge.code).not.toBe(0);
    expect(bridge.out).toContain('Driver: "bridge" is not supported');
    expect(await docker('network', 'rm', 'dnet')).toMatchObject({ code: 0 });
  });
});
