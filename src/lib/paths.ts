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
