/**
 * Fleet boot with the compiled dist/shoal: a daemon started with --fleet-addr serves install.sh and its
 * own executable; `curl …/install.sh | sh -s -- --join … --token …` installs a byte-identical, checksum-
 * verified copy and hands the arguments to the daemon command it would run. The join itself is not
 * exercised here (it is wired elsewhere); the command line the script builds is.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const work = mkdtempSync(join(tmpdir(), 'shoal-fleet-it-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function sh(script: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn(['sh', '-c', script], { env: { PATH: process.env.PATH!, HOME: work, ...env }, stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

// What a new host pipes into sh: curl as in the docs, wget where curl is missing.
const GET = Bun.which('curl') ? 'curl -fsSL' : Bun.which('wget') ? 'wget -qO-' : null;

describe.skipIf(!GET)(`fleet boot over HTTP (dist/shoal)${GET ? '' : ' (skipped: neither curl nor wget is installed)'}`, () => {
  test('curl …/install.sh | sh installs the manager\'s own executable, verified, and passes the join arguments on', async () => {
    await using d = await tempDaemon(['--fleet-addr', '127.0.0.1:0']);
    await d.start();
    const base = (await waitFor('the fleet server in the daemon log', () => /fleet: serving .* on (http:\/\/127\.0\.0\.1:\d+)/.exec(d.output)?.[1]));

    const served = (await (await fetch(`${base}/shoal.sha256`)).text()).split(/\s+/)[0];
    expect(served).toBe(sha256File(SHOAL));
    // The admin API is not on this port.
    expect((await fetch(`${base}/_ping`)).status).toBe(404);
    expect((await fetch(`${base}/v1.47/swarm`)).status).toBe(404);

    const bin = join(work, 'a/usr/local/bin');
    const r = await sh(`${GET} ${base}/install.sh | sh -s -- --join 127.0.0.1:4242 --token SHOAL-1-abc-def`, { INSTALL_SHOAL_BIN_DIR: bin, INSTALL_SHOAL_SKIP_START: 'true', INSTALL_SHOAL_SYSTEMD: 'false' });
    expect(r.stderr).toContain(`downloading ${base}/shoal (linux-${process.arch === 'arm64' ? 'arm64' : 'amd64'})`);
    expect(r.stderr).toContain(`checksum verified (${served})`);
    expect(r.code).toBe(0);
    expect(Buffer.compare(readFileSync(join(bin, 'shoal')), readFileSync(SHOAL))).toBe(0);
    expect(r.stderr).toContain(`daemon command: '${bin}/shoal' 'daemon' '--join' '127.0.0.1:4242' '--token' 'SHOAL-1-abc-def'`);

    // The installed copy is a working shoal.
    const v = await sh(`'${bin}/shoal' --help`);
    expect(v.code).toBe(0);

    // And it uninstalls.
    const u = await sh(`sh '${bin}/shoal-uninstall.sh'`);
    expect(u.code).toBe(0);
    expect(await Bun.file(join(bin, 'shoal')).exists()).toBe(false);
  });

  test('with systemd the unit runs the daemon with the join arguments (stub systemctl)', async () => {
    await using d = await tempDaemon(['--fleet-addr', '127.0.0.1:0']);
    await d.start();
    const base = (await waitFor('the fleet server in the daemon log', () => /fleet: serving .* on (http:\/\/127\.0\.0\.1:\d+)/.exec(d.output)?.[1]));
    const stubs = join(work, 'b/stubs');
    mkdirSync(stubs, { recursive: true });
    writeFileSync(join(stubs, 'systemctl'), `#!/bin/sh\necho "$*" >> '${join(work, 'b/calls')}'\n`, { mode: 0o755 });
    const bin = join(work, 'b/usr/local/bin');
    const unitDir = join(work, 'b/etc/systemd/system');
    const r = await sh(`${GET} ${base}/install.sh | sh -s -- --join 127.0.0.1:4242 --token T`, {
      PATH: `${stubs}:${process.env.PATH}`,
      INSTALL_SHOAL_BIN_DIR: bin,
      INSTALL_SHOAL_SYSTEMD_DIR: unitDir,
      INSTALL_SHOAL_SYSTEMD: 'true',
      INSTALL_SHOAL_DATA_DIR: '/var/lib/shoal',
    });
    expect(r.code).toBe(0);
    expect(readFileSync(join(unitDir, 'shoal.service'), 'utf8')).toContain(`ExecStart="${bin}/shoal" "daemon" "--data-dir" "/var/lib/shoal" "--join" "127.0.0.1:4242" "--token" "T"\n`);
    expect(readFileSync(join(work, 'b/calls'), 'utf8')).toContain('enable shoal.service');
  });
});
