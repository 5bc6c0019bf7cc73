/**
 * dist/shoal daemons inside namespace hosts: a manager on host 0 serves itself with --fleet-addr; host 1
 * installs from it with curl | sh across the bridge; while host 1 is cut off the install fails.
 * The first use of the harness with the real binary, the way the multi-host tests will use it.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, disposeAll, type NetHost, logsOnFailure, requireNetns, SHOAL, waitFor } from '../harness/index.ts';

const unavailable = requireNetns(Bun.which('curl') ? null : 'needs curl (Debian package curl)');

describe.skipIf(unavailable !== null)(`fleet boot between namespace hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterEach(() => disposeAll());

  test('a host installs the manager\'s executable across the bridge; cut off, it cannot', logsOnFailure(async () => {
    await using cluster = await Cluster.netns({ hosts: 2 });
    const net = cluster.net!;
    const dir = cluster.dir;
    const [manager, joiner] = net.hosts as [NetHost, NetHost];
    const daemon = await cluster.add({ init: true, args: ['--fleet-addr', `${manager.ip}:4243`] });
    await waitFor('the fleet server on host 0', () => daemon.output.includes(`on http://${manager.ip}:4243`));

    const install = (binDir: string) =>
      net.run(joiner, ['sh', '-c', `curl -fsS --connect-timeout 2 http://${manager.ip}:4243/install.sh | sh -s -- --join ${manager.ip}:4242 --token T`], {
        PATH: process.env.PATH!,
        INSTALL_SHOAL_BIN_DIR: binDir,
        INSTALL_SHOAL_SKIP_START: 'true',
        INSTALL_SHOAL_SYSTEMD: 'false',
      });

    net.isolate(joiner);
    const cut = await install(join(dir, 'cut-bin'));
    expect(cut.stderr).not.toContain('installed');
    expect(await Bun.file(join(dir, 'cut-bin/shoal')).exists()).toBe(false);

    net.heal();
    const ok = await waitFor('an install from host 1 after healing', async () => {
      const r = await install(join(dir, 'bin'));
      return r.stderr.includes('installed') ? r : null;
    }, 30_000);
    expect(ok.stderr).toContain('checksum verified');
    expect(ok.stderr).toContain(`'--join' '${manager.ip}:4242' '--token' 'T'`);
    expect(Buffer.compare(readFileSync(join(dir, 'bin/shoal')), readFileSync(SHOAL))).toBe(0);
  }), 90_000);
});
