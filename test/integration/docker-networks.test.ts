/**
 * Docker networks that shoal made and a daemon left behind (issue 16): a daemon killed while its
 * container tasks sat on an overlay network leaves the network's Docker network in the engine. A
 * new run that needs the same subnet used to fail every container with the engine's "Pool
 * overlaps"; now the leftover, empty, is removed and the task runs. And at start a daemon removes
 * the empty Docker networks that carry its own node ID.
 *
 * Subnets are unusual ones of this file's own: the engine is shared with other tests.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { engineForTests, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { tempDaemon, waitFor } from '../harness/index.ts';

const engine = await engineForTests();
const root = process.getuid?.() === 0;

function docker(...args: string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(['docker', ...args], { stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString().trim() };
}
const lines = (s: string) => s.split('\n').filter(Boolean);
const shoalNetworks = (subnet: string) => lines(docker('network', 'ls', '-q', '--filter', 'label=io.shoal.network.id').out)
  .filter((id) => docker('network', 'inspect', id, '--format', '{{range .IPAM.Config}}{{.Subnet}}{{end}}').out === subnet);
const removeContainersOn = (network: string) => {
  for (const c of lines(docker('ps', '-aq', '--filter', `network=${network}`).out)) docker('rm', '-f', c);
};

describe('Docker networks left by an earlier run', () => {
  if (!engine.ok || !root) {
    test.skip(`needs a Docker Engine and root (overlay bridges): ${engine.ok ? 'not root' : engine.reason}`, () => {});
    return;
  }
  // A failed run must not leave its networks to the next one (or to other tests on this engine).
  afterAll(() => {
    for (const subnet of ['10.213.47.0/24', '10.213.48.0/24', '10.213.49.0/24']) {
      for (const id of shoalNetworks(subnet)) {
        removeContainersOn(id);
        docker('network', 'rm', id);
      }
    }
  });

  test('a killed daemon\'s network holds the subnet: the next cluster removes it (no "Pool overlaps") and its container runs', async () => {
    const subnet = '10.213.47.0/24';
    let leftover = '';
    {
      await using a = await tempDaemon();
      await a.start();
      await a.ok('network', 'create', '--subnet', subnet, 'left');
      await a.ok('service', 'create', '-d', '--name', 'c', '--runtime', 'container', '--network', 'left', '--stop-grace-period', '1s', TEST_IMAGE, 'sleep', '1000');
      await waitFor('the container task running', async () => (await a.running('c')).length === 1 || null, 60_000);
      [leftover] = shoalNetworks(subnet);
      expect(leftover).toBeTruthy();
      await a.kill9();
      // The daemon is gone for good (its data dir goes too); its container is cleaned up by hand.
      removeContainersOn(leftover!);
    }
    expect(shoalNetworks(subnet)).toEqual([leftover]);

    await using b = await tempDaemon();
    await b.start();
    await b.ok('network', 'create', '--subnet', subnet, 'again');
    await b.ok('service', 'create', '-d', '--name', 'c2', '--runtime', 'container', '--network', 'again', '--stop-grace-period', '1s', TEST_IMAGE, 'sleep', '1000');
    const [t] = await waitFor('the new container task running', async () => {
      const [task] = await b.tasks({ service: ['c2'] });
      if (task?.Status.State === 'rejected') throw new Error(`rejected: ${task.Status.Err}`);
      const r = await b.running('c2');
      return r.length ? r : null;
    }, 60_000);
    expect(t.Status.Err ?? '').not.toContain('Pool overlaps');
    expect(b.output).toMatch(/removed Docker network shoal-left-\S+ \(subnet 10\.213\.47\.0\/24, node \S+\): a leftover/);
    const now = shoalNetworks(subnet);
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(leftover);
    await b.ok('service', 'rm', 'c2');
    await waitFor('the Docker network released', () => shoalNetworks(subnet).length === 0 || null, 30_000);
  }, 180_000);

  test('at start a daemon removes the empty Docker networks carrying its node ID, and only those', async () => {
    await using d = await tempDaemon();
    await d.start();
    const nodeId = JSON.parse(await d.ok('node', 'inspect', 'self'))[0].ID as string;
    await d.kill9();
    const mine = `shoal-stale-${nodeId.slice(0, 12)}`;
    const theirs = 'shoal-stale-of-another-node';
    const made = (name: string, owner: string, subnet: string) => docker('network', 'create', '--subnet', subnet,
      '--label', 'io.shoal.network.id=x', '--label', `io.shoal.node.id=${owner}`, name);
    expect(made(mine, nodeId, '10.213.48.0/24').code).toBe(0);
    expect(made(theirs, 'another-node', '10.213.49.0/24').code).toBe(0);
    try {
      await d.start(false);
      await waitFor('the daemon to say it removed its own leftover', () => d.output.includes(`removed Docker networks left by this node's last run: ${mine}`) || null, 30_000);
      expect(docker('network', 'inspect', mine).code).not.toBe(0);
      expect(docker('network', 'inspect', theirs).code).toBe(0);
    } finally {
      docker('network', 'rm', mine);
      docker('network', 'rm', theirs);
    }
  }, 120_000);
});
