import { chmodSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `/var/lib/shoal` as root, else `~/.local/share/shoal` (XDG_DATA_HOME respected). */
export function defaultDataDir(): string {
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/lib/shoal';
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'share'), 'shoal');
}

/** The admin API's unix socket inside a data dir. */
export function socketPath(dataDir: string): string {
  return join(dataDir, 'shoal.sock');
}

/**
 * Makes `dir` (and missing parents) private to this user: 0700 even when it already existed with
 * looser bits, since the data dir holds the node's key, the raft log and join tokens.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}
