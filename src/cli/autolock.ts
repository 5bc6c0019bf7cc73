/** `shoal swarm unlock`, `shoal swarm unlock-key`, and the `--autolock` option of `swarm init|update`. */
import { createInterface } from 'node:readline';
import { UsageError } from './args.ts';
import type { Command, Ctx } from './command.ts';

export const AUTOLOCK_OPTION: Command['options'][number] = {
  long: 'autolock', kind: 'string', value: 'true|false',
  help: 'lock restarted managers until "shoal swarm unlock" with the key this prints (their raft log and keys stay sealed)',
};

/** `--autolock` as the spec's EncryptionConfig, or undefined when not given. */
export function autolockFromFlags(ctx: Ctx): { AutoLockManagers: boolean } | undefined {
  const v = ctx.args.str('autolock');
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw new UsageError(`invalid value "${v}" for --autolock: expected true or false`);
  return { AutoLockManagers: v === 'true' };
}

/** What `swarm init|update --autolock=true` and `unlock-key` print, as docker does. */
export function unlockKeyText(key: string): string {
  return 'To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n' +
    'command and provide the following key:\n\n' +
    `    ${key}\n\n` +
    'Remember to store this key in a password manager, since without it you\n' +
    'will not be able to restart the manager.\n';
}

async function readKey(ctx: Ctx): Promise<string> {
  const given = ctx.args.str('key');
  if (given !== undefined) return given.trim();
  if (process.stdin.isTTY) {
    ctx.io.err('Enter unlock key: ');
    const rl = createInterface({ input: process.stdin });
    try {
      for await (const line of rl) return line.trim();
    } finally {
      rl.close();
    }
    return '';
  }
  if (!ctx.io.stdin) throw new UsageError('give the key with --key, or on standard input');
  return new TextDecoder().decode(await ctx.io.stdin()).split('\n')[0]!.trim();
}

export const unlockCmd: Command = {
  name: 'unlock',
  summary: 'Unlock a manager that autolock locked at its restart (the key from --key or standard input)',
  usage: '[OPTIONS]',
  options: [{ long: 'key', kind: 'string', value: 'KEY', help: 'the unlock key (else read from standard input, prompted on a terminal)' }],
  maxArgs: 0,
  async run(ctx) {
    const c = ctx.client();
    const info = await c.info();
    const state = info?.Swarm?.LocalNodeState;
    if (state === 'inactive') throw new UsageError('this node is not part of a cluster');
    if (state !== 'locked') throw new UsageError('this manager is not locked');
    const key = await readKey(ctx);
    if (!key) throw new UsageError('no unlock key given');
    await c.request('POST', '/swarm/unlock', { body: { UnlockKey: key } });
    ctx.io.out('Manager unlocked.\n');
  },
};

export const unlockKeyCmd: Command = {
  name: 'unlock-key',
  summary: 'Show (or rotate) the key that unlocks restarted managers under autolock',
  usage: '[OPTIONS]',
  options: [
    { long: 'rotate', kind: 'bool', help: 'replace the key; the old one no longer unlocks a manager once every manager re-sealed its keys' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'only the key' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const c = ctx.client();
    if (ctx.args.bool('rotate')) {
      await c.request('POST', '/swarm/update', { query: { rotateManagerUnlockKey: 'true' } });
      if (!ctx.args.bool('quiet')) ctx.io.out('Successfully rotated manager unlock key.\n\n');
    }
    const { UnlockKey } = await c.json<{ UnlockKey: string }>('GET', '/swarm/unlockkey');
    if (!UnlockKey) throw new UsageError('no unlock key is set: autolock is off ("shoal swarm update --autolock=true" turns it on)');
    ctx.io.out(ctx.args.bool('quiet') ? `${UnlockKey}\n` : unlockKeyText(UnlockKey));
  },
};
