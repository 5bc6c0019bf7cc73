/**
 * The executable on this host during an upgrade: a staged copy in the data dir (verified by its
 * SHA-256 and by asking it its version), swapped in over the running one with the running one kept
 * as `<path>.previous` for a rollback, and the daemon started again on it with the same pid (execve).
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { copyFile, type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, UnavailableError } from '../../lib/errors.ts';
import { ensurePrivateDir } from '../../lib/paths.ts';

/** The largest executable accepted (today's is ~100 MB). */
export const MAX_EXECUTABLE_BYTES = 512 * 1024 * 1024;
// Starting a 100 MB executable on a loaded host can take seconds: the bound is for a hung one.
const PROBE_TIMEOUT_MS = 60_000;
const SHA256 = /^[0-9a-f]{64}$/;

export class UpgradeError extends InvalidArgumentError {}

export function checkSha256(hex: string, what = 'sha256'): string {
  const h = hex.trim().toLowerCase();
  if (!SHA256.test(h)) throw new UpgradeError(`${what} "${hex}": expected 64 hexadecimal digits (a SHA-256)`);
  return h;
}

/** `<data-dir>/upgrade`, private: staged executables wait there. */
export function stagingDir(dataDir: string): string {
  const dir = join(dataDir, 'upgrade');
  ensurePrivateDir(dir);
  return dir;
}

export function stagedPath(dataDir: string, sha256: string): string {
  return join(stagingDir(dataDir), `shoal-${sha256}`);
}

/**
 * Receives an executable in pieces; `finish` checks its size and digest when they were announced,
 * makes it executable and leaves it at its staged path. Writes are asynchronous: a disk that
 * throttles 100 MB of dirty pages must not hold the event loop (heartbeats, raft) meanwhile.
 */
export class StagingWriter {
  readonly #tmp: string;
  #file: Promise<FileHandle>;
  #hash = createHash('sha256');
  #bytes = 0;
  #closed = false;

  constructor(private readonly dataDir: string, private readonly expect: { sha256: string | null; size: number | null }) {
    if (expect.size !== null && !(Number.isInteger(expect.size) && expect.size > 0 && expect.size <= MAX_EXECUTABLE_BYTES)) {
      throw new UpgradeError(`executable size ${expect.size}: expected 1 to ${MAX_EXECUTABLE_BYTES} bytes`);
    }
    if (expect.sha256 !== null) checkSha256(expect.sha256);
    this.#tmp = join(stagingDir(dataDir), `incoming-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    this.#file = open(this.#tmp, 'w', 0o600);
    this.#file.catch(() => {});
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#bytes += chunk.length;
    const bound = this.expect.size ?? MAX_EXECUTABLE_BYTES;
    if (this.#bytes > bound) throw new UpgradeError(this.expect.size !== null ? `the executable is longer than the announced ${bound} bytes` : `the executable is over ${bound} bytes`);
    this.#hash.update(chunk);
    const f = await this.#file;
    let off = 0;
    while (off < chunk.length) off += (await f.write(chunk, off)).bytesWritten;
  }

  /** The staged path and digest, once the bytes are all there and match what was announced. */
  async finish(): Promise<{ path: string; sha256: string; size: number }> {
    try {
      // No fsync: a staged file is hashed again before it is swapped in.
      await this.#close();
      if (this.#bytes === 0) throw new UpgradeError('the executable is empty');
      if (this.expect.size !== null && this.#bytes !== this.expect.size) throw new UpgradeError(`the executable has ${this.#bytes} bytes, not the announced ${this.expect.size}`);
      const got = this.#hash.digest('hex');
      if (this.expect.sha256 !== null && got !== this.expect.sha256) throw new UpgradeError(`checksum mismatch: the executable's SHA-256 is ${got}, not the expected ${this.expect.sha256}`);
      chmodSync(this.#tmp, 0o755);
      const to = stagedPath(this.dataDir, got);
      renameSync(this.#tmp, to);
      return { path: to, sha256: got, size: this.#bytes };
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await (await this.#file).close();
  }

  /** Drop what was received (the promise is for whoever must know the file is gone). */
  abort(): Promise<void> {
    return this.#close().catch(() => {}).finally(() => rmSync(this.#tmp, { force: true }));
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of Bun.file(path).stream()) h.update(chunk);
  return h.digest('hex');
}

/** Run `<path> --version`; the version it prints, or a clear error (not executable, crashed, printed something else). */
export async function probeVersion(path: string): Promise<string> {
  let proc;
  try {
    proc = Bun.spawn([path, '--version'], { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  } catch (err) {
    throw new UpgradeError(`the new executable cannot be run (${(err as Error).message}): is it a shoal executable for this host's architecture?`);
  }
  const timer = setTimeout(() => proc.kill('SIGKILL'), PROBE_TIMEOUT_MS);
  const [out, errOut, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  const m = /^shoal version (\S+?),? /m.exec(out);
  if (code !== 0 || !m) {
    const said = (out + errOut).trim().slice(0, 200);
    throw new UpgradeError(`the new executable failed its "--version" probe (exit ${code ?? 'killed'}${said ? `: ${said}` : ', no output'}): not a working shoal executable for this host`);
  }
  return m[1]!;
}

/** Probe and insist on `version`. */
export async function expectVersion(path: string, version: string): Promise<void> {
  const got = await probeVersion(path);
  if (got !== version) throw new UpgradeError(`the new executable says it is version ${got}, not the expected ${version}`);
}

/** The executable this daemon runs from; refuses a daemon run from source (nothing to replace). */
export function runningExecutable(): string {
  if (!Bun.main.startsWith('/$bunfs/')) throw new UnavailableError('this daemon runs from source (bun src/main.ts), not from a compiled shoal: it cannot upgrade itself');
  return process.execPath.replace(/ \(deleted\)$/, '');
}

export const previousOf = (exe: string) => `${exe}.previous`;

/**
 * Put `staged` at `exe`, keeping the running one as `exe.previous`. The new file is copied next to
 * `exe` first (the data dir may be on another file system), then renamed over it: at no moment is
 * there no executable at `exe`.
 */
export async function swapIn(staged: string, exe: string): Promise<void> {
  const next = `${exe}.next`;
  await copyFile(staged, next);
  chmodSync(next, statSync(exe).mode & 0o7777 | 0o111);
  await copyFile(exe, previousOf(exe));
  renameSync(next, exe);
}

/** Put `exe.previous` back at `exe` (a rollback). */
export function swapBack(exe: string): void {
  const prev = previousOf(exe);
  if (!existsSync(prev)) throw new UpgradeError(`there is no previous executable at ${prev} to roll back to`);
  renameSync(prev, exe);
}

/** Drop staged executables other than `keep` (an earlier upgrade's). */
export function pruneStaged(dataDir: string, keep: string | null): void {
  const dir = stagingDir(dataDir);
  for (const f of new Bun.Glob('shoal-*').scanSync({ cwd: dir })) {
    const p = join(dir, f);
    if (p !== keep) rmSync(p, { force: true });
  }
}

/**
 * The daemon's arguments for its re-exec, without the flags that act once (`--force-new-cluster`,
 * `--restore FILE`): a restart after an upgrade must not force or restore again. (`--init` and
 * `--join` are ignored by a daemon already in a cluster.)
 */
export function reexecArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--force-new-cluster' || a.startsWith('--restore=')) continue;
    if (a === '--restore') {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * Replace this process with `exe`, same pid and same arguments (execve through libc): whoever
 * started the daemon still holds it, its output goes where it went. Call only once the daemon has
 * stopped (listeners closed, the data dir's lock released).
 */
export async function reexec(exe: string, args: string[]): Promise<never> {
  const { dlopen, FFIType, ptr } = await import('bun:ffi');
  const libc = dlopen('libc.so.6', { execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } });
  const keep: Buffer[] = [];
  const cstr = (s: string) => {
    const b = Buffer.from(`${s}\0`);
    keep.push(b);
    return b;
  };
  const vec = (xs: string[]) => {
    const v = new BigUint64Array(xs.length + 1);
    xs.forEach((x, i) => (v[i] = BigInt(ptr(cstr(x)))));
    return v;
  };
  const argv = vec([exe, ...args]);
  const envp = vec(Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])));
  libc.symbols.execve(ptr(cstr(exe)), ptr(argv), ptr(envp));
  throw new UnavailableError(`execve ${exe} failed`);
}
