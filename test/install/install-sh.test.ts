/**
 * install.sh driven as a user would, in a fake root under a temp dir: from a path, from an http URL
 * served on 127.0.0.1 by the test, checksum refusals, argument pass-through, the systemd unit (with a
 * stub systemctl) and uninstall. The executable is a small stand-in script, so nothing here needs a build.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { installScriptFor } from '../../src/daemon/fleet-http.ts';

const INSTALL_SH = resolve(import.meta.dir, '../../install.sh');
const root = mkdtempSync(join(tmpdir(), 'shoal-install-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A stand-in for dist/shoal: answers `--help`, and for `daemon` prints its arguments, one a line. */
const FAKE = `#!/bin/sh
if [ "$1" = --help ]; then echo "shoal fake"; exit 0; fi
if [ "$1" = daemon ]; then shift; echo "DAEMON-ARGS"; for a in "$@"; do echo "$a"; done; exit 0; fi
exit 3
`;
const fakePath = join(root, 'fake-shoal');
writeFileSync(fakePath, FAKE, { mode: 0o755 });
const fakeSha = createHash('sha256').update(FAKE).digest('hex');
const WRONG_SHA = 'ab'.repeat(32);

let n = 0;
/** A fresh fake root: bin dir, systemd dir, and a PATH dir for stubs (uname, systemctl). */
function fakeRoot() {
  const dir = join(root, `r${++n}`);
  const stubs = join(dir, 'stubs');
  mkdirSync(stubs, { recursive: true });
  return { dir, bin: join(dir, 'usr/local/bin'), systemd: join(dir, 'etc/systemd/system'), stubs };
}

interface Run { code: number; stdout: string; stderr: string }

async function run(cmd: string[], env: Record<string, string>, stubs?: string, stdin?: string): Promise<Run> {
  const PATH = stubs ? `${stubs}:${process.env.PATH}` : process.env.PATH!;
  const p = Bun.spawn(cmd, { env: { PATH, HOME: root, ...env }, stdin: stdin === undefined ? 'ignore' : new TextEncoder().encode(stdin), stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

function install(env: Record<string, string>, args: string[] = [], stubs?: string): Promise<Run> {
  return run(['sh', INSTALL_SH, ...(args.length ? ['--', ...args] : [])], env, stubs);
}

function stub(dir: string, name: string, body: string): void {
  writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
}

describe('install.sh', () => {
  test('is POSIX sh (sh -n)', async () => {
    const r = await run(['sh', '-n', INSTALL_SH], {});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  const shellcheck = Bun.which('shellcheck');
  test.skipIf(!shellcheck)(`passes shellcheck${shellcheck ? '' : ' (skipped: shellcheck is not installed; Debian package "shellcheck")'}`, async () => {
    const r = await run([shellcheck!, '-s', 'sh', INSTALL_SH], {});
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('installs from a path with its checksum, prints the daemon command, and uninstalls', async () => {
    const fr = fakeRoot();
    const r = await install({ INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_SHA256: fakeSha, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' }, ['--join', '10.0.0.1:4242', '--token', "SHOAL-1-a b'c"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('checksum verified');
    expect(readFileSync(join(fr.bin, 'shoal'), 'utf8')).toBe(FAKE);
    expect(r.stderr).toContain(`daemon command: '${fr.bin}/shoal' 'daemon' '--join' '10.0.0.1:4242' '--token' 'SHOAL-1-a b'\\''c'`);
    expect(existsSync(join(fr.bin, 'shoal-uninstall.sh'))).toBe(true);

    const u = await run(['sh', join(fr.bin, 'shoal-uninstall.sh')], {});
    expect(u.code).toBe(0);
    expect(readdirSync(fr.bin)).toEqual([]);
  });

  test('a wrong checksum refuses and installs nothing', async () => {
    const fr = fakeRoot();
    const r = await install({ INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_SHA256: WRONG_SHA, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`checksum mismatch: expected ${WRONG_SHA}, got ${fakeSha}`);
    expect(existsSync(fr.bin)).toBe(false);
  });

  test('an upper-case checksum is the same checksum', async () => {
    const fr = fakeRoot();
    const r = await install({ INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_SHA256: fakeSha.toUpperCase(), INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
    expect(r.stderr).toContain('checksum verified');
    expect(r.code).toBe(0);
  });

  test('a checksum that is not a sha256 is refused', async () => {
    const fr = fakeRoot();
    const r = await install({ INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_SHA256: 'abc', INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('is not a sha256');
    expect(existsSync(fr.bin)).toBe(false);
  });

  describe.skipIf(!Bun.which('curl') && !Bun.which('wget'))(`from an http URL${Bun.which('curl') || Bun.which('wget') ? '' : ' (skipped: neither curl nor wget is installed)'}`, () => {
    const served: Record<string, string> = {
      '/good/shoal': FAKE,
      '/good/shoal.sha256': `${fakeSha}  shoal\n`,
      '/bad/shoal': FAKE,
      '/bad/shoal.sha256': `${WRONG_SHA}  shoal\n`,
      '/nosum/shoal': FAKE,
    };
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (req) => {
        const body = served[new URL(req.url).pathname];
        return body === undefined ? new Response('not found', { status: 404 }) : new Response(body);
      },
    });
    afterAll(() => server.stop(true));
    const base = `http://127.0.0.1:${server.port}`;

    test('downloads, verifies against URL.sha256, installs', async () => {
      const fr = fakeRoot();
      const r = await install({ INSTALL_SHOAL_URL: `${base}/good/shoal`, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
      expect(r.stderr).toContain(`checksum verified (${fakeSha})`);
      expect(r.code).toBe(0);
      expect(readFileSync(join(fr.bin, 'shoal'), 'utf8')).toBe(FAKE);
    });

    test('works with wget when curl is not there', async () => {
      const wget = Bun.which('wget');
      if (!wget) return; // nothing to prove on a host without wget
      const fr = fakeRoot();
      // A PATH with only what the script needs besides curl.
      for (const tool of ['sh', 'uname', 'id', 'mktemp', 'rm', 'cp', 'cut', 'sha256sum', 'grep', 'chmod', 'install', 'mkdir', 'dirname', 'sed', 'printf', 'cat', 'tr']) {
        const at = Bun.which(tool);
        if (at) stub(fr.stubs, tool, `exec ${at} "$@"`);
      }
      stub(fr.stubs, 'wget', `exec ${wget} "$@"`);
      const r = await run(['/bin/sh', INSTALL_SH], { PATH: fr.stubs, INSTALL_SHOAL_URL: `${base}/good/shoal`, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
      expect(r.stderr).toContain('checksum verified');
      expect(r.code).toBe(0);
    });

    test('a wrong URL.sha256 refuses and installs nothing', async () => {
      const fr = fakeRoot();
      const r = await install({ INSTALL_SHOAL_URL: `${base}/bad/shoal`, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('checksum mismatch');
      expect(existsSync(fr.bin)).toBe(false);
    });

    test('a download without any checksum is refused; INSTALL_SHOAL_SHA256 makes it go', async () => {
      const fr = fakeRoot();
      const r = await install({ INSTALL_SHOAL_URL: `${base}/nosum/shoal`, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('no checksum');
      expect(existsSync(fr.bin)).toBe(false);

      const ok = await install({ INSTALL_SHOAL_URL: `${base}/nosum/shoal`, INSTALL_SHOAL_SHA256: fakeSha, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
      expect(ok.code).toBe(0);
    });

    test('a failing download is refused', async () => {
      const fr = fakeRoot();
      const r = await install({ INSTALL_SHOAL_URL: `${base}/missing/shoal`, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('download of');
      expect(existsSync(fr.bin)).toBe(false);
    });
  });

  test('refuses an architecture it has no build for, by name', async () => {
    const fr = fakeRoot();
    stub(fr.stubs, 'uname', 'if [ "$1" = -m ]; then echo riscv64; else echo Linux; fi');
    const r = await install({ INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_BIN_DIR: fr.bin }, [], fr.stubs);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unsupported architecture riscv64');
    expect(existsSync(fr.bin)).toBe(false);
  });

  const setpriv = Bun.which('setpriv');
  const asRoot = process.getuid?.() === 0;
  test.skipIf(!setpriv || !asRoot)(`not root: sudo only for directories it cannot write${setpriv && asRoot ? '' : ' (skipped: needs root and setpriv to become another user)'}`, async () => {
    const fr = fakeRoot();
    const sudoLog = join(fr.dir, 'sudo.log');
    stub(fr.stubs, 'sudo', `echo "sudo $*" >> '${sudoLog}'; exit 97`);
    // The user "nobody" must be able to read the script, the executable and the stubs.
    for (const d of [root, fr.dir, fr.stubs]) chmodSync(d, 0o755);
    const own = join(fr.dir, 'home/bin');
    mkdirSync(own, { recursive: true });
    chownSync(join(fr.dir, 'home'), 65534, 65534);
    chownSync(own, 65534, 65534);
    writeFileSync(sudoLog, '', { mode: 0o666 });
    chmodSync(sudoLog, 0o666);
    const asNobody = (binDir: string) =>
      run([setpriv!, '--reuid=65534', '--regid=65534', '--clear-groups', 'sh', INSTALL_SH], { HOME: join(fr.dir, 'home'), INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_BIN_DIR: binDir, INSTALL_SHOAL_SKIP_START: 'true', INSTALL_SHOAL_SYSTEMD: 'false' }, fr.stubs);

    const mine = await asNobody(own);
    expect(mine.stderr).toContain(`installed ${own}/shoal`);
    expect(mine.code).toBe(0);
    expect(readFileSync(sudoLog, 'utf8')).toBe('');

    const theirs = await asNobody(fr.bin); // under fr.dir, owned by root, 0755
    expect(theirs.code).not.toBe(0);
    expect(readFileSync(sudoLog, 'utf8')).toContain(`sudo mkdir -p ${fr.bin}`);
  });

  test("a manager's script refuses a host of another architecture before downloading", async () => {
    const fr = fakeRoot();
    const served = join(fr.dir, 'served-install.sh');
    writeFileSync(served, installScriptFor('http://127.0.0.1:9/shoal', 'amd64'));
    stub(fr.stubs, 'uname', 'if [ "$1" = -m ]; then echo aarch64; else echo Linux; fi');
    const r = await run(['sh', served], { INSTALL_SHOAL_BIN_DIR: fr.bin }, fr.stubs);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the manager serves a linux-amd64 executable and this host is linux-arm64: set INSTALL_SHOAL_URL to a linux-arm64 build');
    expect(existsSync(fr.bin)).toBe(false);
  });

  test('without systemd it runs the daemon in the foreground with --data-dir, INSTALL_SHOAL_EXEC and the arguments after --', async () => {
    const fr = fakeRoot();
    const r = await install(
      { INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_DATA_DIR: join(fr.dir, 'data'), INSTALL_SHOAL_EXEC: '--listen-addr 0.0.0.0:4242', INSTALL_SHOAL_SYSTEMD: 'false' },
      ['--join', 'm1:4242', '--token', 'T 1'],
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('running the daemon in the foreground');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['DAEMON-ARGS', '--data-dir', join(fr.dir, 'data'), '--listen-addr', '0.0.0.0:4242', '--join', 'm1:4242', '--token', 'T 1']);
  });

  test('INSTALL_SHOAL_SYSTEMD=true writes a unit with the daemon arguments, enables it, and uninstall removes it', async () => {
    const fr = fakeRoot();
    const calls = join(fr.dir, 'systemctl.calls');
    stub(fr.stubs, 'systemctl', `echo "$*" >> '${calls}'`);
    const r = await install(
      { INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SYSTEMD_DIR: fr.systemd, INSTALL_SHOAL_SYSTEMD: 'true' },
      ['--join', 'm1:4242', '--token', 'a"b$c%d'],
      fr.stubs,
    );
    expect(r.code).toBe(0);
    const unit = readFileSync(join(fr.systemd, 'shoal.service'), 'utf8');
    expect(unit).toContain(`ExecStart="${fr.bin}/shoal" "daemon" "--join" "m1:4242" "--token" "a\\"b$$c%%d"\n`);
    expect(unit).toContain('KillMode=process');
    expect(readFileSync(calls, 'utf8')).toContain('enable shoal.service');
    if (!existsSync('/run/systemd/system')) expect(r.stderr).toContain('starts at the next boot');

    const u = await run(['sh', join(fr.bin, 'shoal-uninstall.sh')], {}, fr.stubs);
    expect(u.code).toBe(0);
    expect(existsSync(join(fr.systemd, 'shoal.service'))).toBe(false);
    expect(readdirSync(fr.bin)).toEqual([]);
    expect(readFileSync(calls, 'utf8')).toContain('disable --now shoal.service');
  });

  test('piped into sh -s -- (as curl | sh does), arguments still reach the daemon', async () => {
    const fr = fakeRoot();
    const r = await run(['sh', '-s', '--', '--join', 'm1:4242'], { INSTALL_SHOAL_BIN_PATH: fakePath, INSTALL_SHOAL_BIN_DIR: fr.bin, INSTALL_SHOAL_SKIP_START: 'true' }, undefined, readFileSync(INSTALL_SH, 'utf8'));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`daemon command: '${fr.bin}/shoal' 'daemon' '--join' 'm1:4242'`);
  });
});
