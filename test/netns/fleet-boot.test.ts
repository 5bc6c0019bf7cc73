/**
 * dist/shoal daemons inside namespace hosts: a manager on host 0 serves itself with --fleet-addr; host 1
 * installs from it with curl | sh across the bridge; while host 1 is cut off the install fails.
 * The first use of the harness with the real binary, the way the multi-host tests will use it.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killTaskProcesses, requireBinary, SHOAL, waitFor } from '../integration/harness.ts';
import { disposeAll, type NetHost, NetnsHosts, netnsUnavailable } from './hosts.ts';

const unavailable = netnsUnavailable() ?? (Bun.which('curl') ? null : 'needs curl (Debian package curl)');
if (unavailable && process.env.SHOAL_REQUIRE_NETNS === '1') throw new Error(`SHOAL_REQUIRE_NETNS=1 but: ${unavailable}`);

describe.skipIf(unavailable !== null)(`fleet boot between namespace hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterEach(() => disposeAll());

  test('a host installs the manager\'s executable across the bridge; cut off, it cannot', async () => {
    requireBinary();
    const dir = mkdtempSync(join(tmpdir(), 'shoal-netns-fleet-'));
    try {
      await using net = await NetnsHosts.create({ hosts: 2 });
      const [manager, joiner] = net.hosts as [NetHost, NetHost];
      const daemon = net.spawn(manager, [SHOAL, 'daemon', '--data-dir', join(dir, 'm'), '--init', '--fleet-addr', `${manager.ip}:4243`]);
      let log = '';
      void (async () => {
        for await (const chunk of daemon.stderr as ReadableStream<Uint8Array>) log += new TextDecoder().decode(chunk);
      })();
      await waitFor('the fleet server on host 0', () => {
        if (daemon.exitCode !== null) throw new Error(`daemon exited ${daemon.exitCode}: ${log}`);
        return log.includes(`on http://${manager.ip}:4243`);
      });

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
    } finally {
      killTaskProcesses(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
