/**
 * The native process shim (native/shim.c): the same contract as the JavaScript shim (shim.ts; the
 * task directory's files, files.ts), in a process of well under 1 MiB instead of the whole shoal
 * executable re-executed (~50 MiB VmRSS, ~9 MiB Pss each, bench/process-footprint.ts).
 *
 * Like the mesh's native relay it is compiled on the host where it runs, from source bundled into
 * the executable as text: here by the host's C compiler (`$CC`, else `cc`), since a shim must be
 * a program of its own (it outlives the daemon), which Bun's built-in TinyCC cannot write. The
 * program lands in `<dir>/shoal-shim-<hash of source and flags>`: compiled once per data dir and
 * version, reused by every later start, never overwritten while shims run it. Where no compiler
 * is found or it fails, `nativeShim` says why and the executor uses the JavaScript shim.
 * SHOAL_PROCESS_SHIM_KIND=js forces the JavaScript shim (to compare, or to rule the native one out).
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import shimSource from './native/shim.c' with { type: 'text' };

const SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Static first: a static shim needs no dynamic loader, and maps less (smaller RSS) per task. */
const FLAG_SETS = [['-O2', '-static'], ['-O2']];

export type NativeShim = { path: string; compiled: boolean } | { reason: string };

/** The compiled program's name: a new source or compiler flag set makes a new file. */
export function nativeShimName(source = shimSource): string {
  const h = createHash('sha256').update(source).update(JSON.stringify(FLAG_SETS)).digest('hex').slice(0, 16);
  return `shoal-shim-${h}`;
}

function executable(file: string): boolean {
  try { const s = statSync(file); return s.isFile() && (s.mode & 0o111) !== 0; } catch { return false; }
}

/**
 * The native shim in `dir`, compiled now if it is not there yet. Never throws: a host that cannot
 * build it gets `{ reason }`.
 */
export async function nativeShim(dir: string, env: Record<string, string | undefined> = process.env): Promise<NativeShim> {
  if (env.SHOAL_PROCESS_SHIM_KIND === 'js') return { reason: 'SHOAL_PROCESS_SHIM_KIND=js' };
  if (env.SHOAL_PROCESS_SHIM_KIND && env.SHOAL_PROCESS_SHIM_KIND !== 'native') {
    return { reason: `SHOAL_PROCESS_SHIM_KIND must be "native" or "js", not "${env.SHOAL_PROCESS_SHIM_KIND}"` };
  }
  const out = join(dir, nativeShimName());
  if (executable(out)) return { path: out, compiled: false };
  const ccName = env.CC || 'cc';
  const compiler = Bun.which(ccName, { PATH: env.PATH || SEARCH_PATH });
  if (!compiler) return { reason: `no C compiler ("${ccName}") on this host` };
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) { return { reason: `cannot create ${dir}: ${(err as Error).message}` }; }
  const src = join(dir, `shim-${process.pid}.c`);
  const tmp = `${out}.tmp${process.pid}`;
  writeFileSync(src, shimSource, { mode: 0o600 });
  let lastErr = '';
  try {
    for (const flags of FLAG_SETS) {
      const p = Bun.spawn([compiler, ...flags, '-o', tmp, src], { stdout: 'ignore', stderr: 'pipe', stdin: 'ignore' });
      const [errText, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      if (code === 0 && executable(tmp)) {
        chmodSync(tmp, 0o755);
        renameSync(tmp, out);
        return { path: out, compiled: true };
      }
      lastErr = errText.trim().split('\n').slice(-3).join(' ') || `exit code ${code}`;
    }
    return { reason: `${compiler} could not build the shim: ${lastErr}` };
  } catch (err) {
    return { reason: `${compiler} could not build the shim: ${(err as Error).message}` };
  } finally {
    rmSync(src, { force: true });
    rmSync(tmp, { force: true });
  }
}

/** For tests: whether a native shim can be built on this host at all. */
export function canBuildNativeShim(env: Record<string, string | undefined> = process.env): boolean {
  return !!Bun.which(env.CC || 'cc', { PATH: env.PATH || SEARCH_PATH }) && existsSync('/proc/self/stat');
}
