/** `shoal swarm update --autolock`, `unlock-key`, `unlock` through runCli against createApp() (and the locked app) on a unix socket. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLockedApp } from '../api/locked.ts';
import { testApi } from '../api/test-helper.ts';
import { InvalidUnlockKeyError } from '../lib/unlock-key.ts';
import type { Io } from './command.ts';
import { runCli } from './index.ts';

let dir: string;
const servers: ReturnType<typeof Bun.serve>[] = [];

async function cli(sock: string, stdin: string | null, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (s) => void (out += s), err: (s) => void (err += s), tty: false, env: { SHOAL_HOST: `unix://${sock}` },
    ...(stdin !== null ? { stdin: async () => new TextEncoder().encode(stdin) } : {}),
  };
  const code = await runCli(argv, io);
  return { code, out, err };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-cli-al-'));
});
afterAll(() => {
  for (const s of servers) s.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe('autolock in the CLI', () => {
  test('swarm update --autolock=true prints the key; unlock-key [-q] [--rotate]; off; a bad value is named', async () => {
    const api = testApi();
    const sock = join(dir, 'a.sock');
    servers.push(Bun.serve({ unix: sock, fetch: (r) => api.app.fetch(r) }));
    expect((await cli(sock, null, 'swarm', 'init')).code).toBe(0);
    const none = await cli(sock, null, 'swarm', 'unlock-key');
    expect(none.code).toBe(1);
    expect(none.err).toContain('no unlock key is set');
    const on = await cli(sock, null, 'swarm', 'update', '--autolock=true');
    expect(on.code).toBe(0);
    const key = /SWMKEY-1-\S+/.exec(on.out)![0];
    expect(on.out).toContain('shoal swarm unlock');
    expect((await cli(sock, null, 'swarm', 'unlock-key', '-q')).out).toBe(`${key}\n`);
    expect((await cli(sock, null, 'cluster', 'unlock-key')).out).toContain(key);
    const rotated = await cli(sock, null, 'swarm', 'unlock-key', '--rotate');
    expect(rotated.out).toContain('Successfully rotated manager unlock key.');
    expect(rotated.out).not.toContain(key);
    const notLocked = await cli(sock, `${key}\n`, 'swarm', 'unlock');
    expect(notLocked.err).toContain('this manager is not locked');
    expect((await cli(sock, null, 'swarm', 'update', '--autolock=false')).code).toBe(0);
    expect((await cli(sock, null, 'swarm', 'unlock-key')).err).toContain('no unlock key is set');
    const bad = await cli(sock, null, 'swarm', 'update', '--autolock=maybe');
    expect(bad.err).toContain('invalid value "maybe" for --autolock');
  });

  test('swarm unlock on a locked manager: the key from standard input or --key; a wrong one refused', async () => {
    const given: string[] = [];
    const app = createLockedApp({
      nodeId: 'n1', version: { Version: 't', ApiVersion: '1.47', Os: 'linux', Arch: 'amd64' }, lockedMessage: 'locked',
      async unlock(k) {
        given.push(k);
        if (k !== 'SWMKEY-1-good') throw new InvalidUnlockKeyError();
      },
    });
    const sock = join(dir, 'l.sock');
    servers.push(Bun.serve({ unix: sock, fetch: (r) => app.fetch(r) }));
    const wrong = await cli(sock, 'SWMKEY-1-bad\n', 'swarm', 'unlock');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('swarm could not be unlocked: invalid key provided');
    expect((await cli(sock, 'SWMKEY-1-good\nmore\n', 'swarm', 'unlock')).out).toBe('Manager unlocked.\n');
    expect((await cli(sock, null, 'swarm', 'unlock', '--key', 'SWMKEY-1-good')).code).toBe(0);
    expect(given).toEqual(['SWMKEY-1-bad', 'SWMKEY-1-good', 'SWMKEY-1-good']);
    expect((await cli(sock, '\n', 'swarm', 'unlock')).err).toContain('no unlock key given');
  });
});
