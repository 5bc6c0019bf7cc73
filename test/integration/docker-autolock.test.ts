/**
 * Issue 16, autolock with the stock docker CLI against dist/shoal: `docker swarm init --autolock`
 * prints the key, `docker swarm unlock-key -q` shows it, a restarted manager is locked (docker's
 * own commands get the "Swarm is encrypted…" error, `docker info` says locked), `docker swarm
 * unlock` reads the key on standard input (a wrong one refused), and `unlock-key --rotate` gives
 * a new key; `swarm update --autolock=false|true` removes it and prints a new one. Skipped, with the reason, where no docker CLI is installed (no Docker daemon needed).
 */
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, runDocker, type DockerRun, freePort, killTaskProcesses, waitFor } from '../harness/index.ts';

const dockerCli = Bun.which('docker');

type Run = DockerRun;

function docker(d: Daemon, args: string[], stdin?: string): Promise<Run> {
  return runDocker(d, args, { stdin });
}

async function ok(d: Daemon, args: string[], stdin?: string): Promise<string> {
  const r = await docker(d, args, stdin);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.err}${r.out}`);
  return r.out.trim();
}

describe.skipIf(!dockerCli)(`docker swarm autolock${dockerCli ? '' : ' (skipped: no docker CLI on PATH)'}`, () => {
  test('init --autolock, unlock-key -q, locked after a restart, unlock from stdin, --rotate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-dal-'));
    const addr = `127.0.0.1:${freePort('127.0.0.1')}`;
    const d = new Daemon(dir, ['--listen-addr', addr]);
    try {
      await d.start(false);
      const init = await ok(d, ['swarm', 'init', '--autolock', '--listen-addr', addr, '--advertise-addr', addr]);
      const key = /SWMKEY-1-[A-Za-z0-9+/]+/.exec(init)?.[0];
      expect(key).toBeDefined();
      expect(init).toContain('docker swarm unlock');
      expect(await ok(d, ['swarm', 'unlock-key', '-q'])).toBe(key!);
      const notLocked = await docker(d, ['swarm', 'unlock'], `${key}\n`);
      expect(notLocked.code).not.toBe(0);
      expect(notLocked.err).toContain('swarm is not locked');
      await waitFor('the keys sealed', () => readFileSync(join(dir, 'dek.json'), 'utf8').includes('"Sealed"'));

      await d.stop();
      await d.start(false);
      expect(await ok(d, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).toBe('locked');
      const refused = await docker(d, ['service', 'ls']);
      expect(refused.code).not.toBe(0);
      expect(refused.err).toContain('Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.');

      const wrong = await docker(d, ['swarm', 'unlock'], 'SWMKEY-1-' + Buffer.alloc(32, 1).toString('base64').replace(/=+$/, '') + '\n');
      expect(wrong.code).not.toBe(0);
      expect(wrong.err).toContain('swarm could not be unlocked: invalid key provided');
      expect(await ok(d, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).toBe('locked');

      await ok(d, ['swarm', 'unlock'], `${key}\n`);
      await waitFor('the manager serving again', async () => (await docker(d, ['node', 'ls', '-q'])).code === 0);
      expect(await ok(d, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).toBe('active');

      const rotated = await ok(d, ['swarm', 'unlock-key', '--rotate', '-q']);
      expect(rotated).toStartWith('SWMKEY-1-');
      expect(rotated).not.toBe(key!);
      expect(await ok(d, ['swarm', 'unlock-key', '-q'])).toBe(rotated);
      const shown = await ok(d, ['swarm', 'unlock-key']);
      expect(shown).toContain(rotated);

      // swarm update --autolock=false, then =true: no key, then a new one printed.
      await ok(d, ['swarm', 'update', '--autolock=false']);
      expect((await docker(d, ['swarm', 'unlock-key'])).err).toContain('no unlock key is set');
      const again = await ok(d, ['swarm', 'update', '--autolock=true']);
      const fresh = /SWMKEY-1-[A-Za-z0-9+/]+/.exec(again)?.[0];
      expect(fresh).toBeDefined();
      expect(fresh).not.toBe(rotated);
      expect(await ok(d, ['swarm', 'unlock-key', '-q'])).toBe(fresh!);
    } finally {
      await d.stop();
      killTaskProcesses(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
