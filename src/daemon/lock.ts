import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShoalError } from '../lib/errors.ts';

/**
 * One daemon per data dir. A pid file whose process is gone (kill -9, a reboot) is stale and taken
 * over; a live one refuses the start with a message naming it.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'shoal.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new ShoalError(`another shoal daemon (pid ${pid}) is using ${dataDir}; stop it or pick another --data-dir`);
    }
  }
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
    } catch {}
  };
}

function isRunning(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('daemon');
  } catch {
    return false;
  }
}
