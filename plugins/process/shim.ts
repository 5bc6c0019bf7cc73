/**
 * The process shim: a small process between the daemon and a task's program, so that the program
 * outlives a daemon crash and its exit status is not lost (a restarted daemon can't wait() on a
 * process that isn't its child). It is the shoal executable itself, re-executed as
 * `shoal __process-shim <taskDir>` (see `shimCommand()`), started detached in its own session.
 *
 * It starts the program in a new session / process group, records pids in the task directory,
 * timestamps each output line into output.log, forwards stop signals to the group, and when the
 * program ends kills whatever is left in its group, writes exit.json and exits.
 */
import { appendFileSync, closeSync, existsSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { killCgroup, oomKills } from './cgroup.ts';
import {
  encodeLogLine, groupMembers, LineSplitter, path, pidRecord, readJson, writeJsonAtomic, type ExitRecord, type ShimSpec,
} from './files.ts';
import { joinCgroupsFirst, LAUNCH_FAILED_EXIT } from './launch.ts';

export const SHIM_ARG = '__process-shim';
/** Set in a shim's environment (not its program's), so a shim never starts another shim. */
export const SHIM_ENV = 'SHOAL_PROCESS_SHIM';

/** True inside the executable built by `bun build --compile` (its modules live under /$bunfs/). */
export function isCompiled(): boolean {
  return import.meta.path.startsWith('/$bunfs/') || Bun.main.startsWith('/$bunfs/') || import.meta.path.includes('~BUN');
}

/** The command that starts a shim; the task directory is appended by the caller. */
export function shimCommand(): string[] {
  if (isCompiled()) return [process.execPath, SHIM_ARG];
  return [process.execPath, resolve(import.meta.dir, '../../src/main.ts'), SHIM_ARG];
}

/** The entry point for `__process-shim`: argv is what follows the program (with or without SHIM_ARG). */
export async function runShim(argv: string[]): Promise<number> {
  const args = argv[0] === SHIM_ARG ? argv.slice(1) : argv;
  const taskDir = args[0];
  if (!taskDir || args.length !== 1) {
    process.stderr.write(`usage: shoal ${SHIM_ARG} <task-dir> (internal: started by the process executor)\n`);
    return 2;
  }
  const spec = readJson<ShimSpec>(path(taskDir, 'spec'));
  if (!spec) {
    process.stderr.write(`${SHIM_ARG}: no readable ${path(taskDir, 'spec')}\n`);
    return 2;
  }
  const self = pidRecord(process.pid);
  if (self) writeJsonAtomic(path(taskDir, 'shim'), self);
  return new Shim(taskDir, spec).run();
}

class Shim {
  #logFd: number;
  #logBytes = 0;
  /** The last stderr line: the reason a launch step gives when it fails. */
  #lastErr = '';
  constructor(readonly taskDir: string, readonly spec: ShimSpec) {
    const logFile = path(taskDir, 'log');
    this.#logFd = openSync(logFile, 'a', 0o600);
    this.#logBytes = existsSync(logFile) ? statSync(logFile).size : 0;
  }

  async run(): Promise<number> {
    let child: Bun.Subprocess<'ignore', 'pipe', 'pipe'>;
    const program = this.spec.command[0]!;
    // A spec for the native shim (a restart may bring this shim instead): Bun cannot join a cgroup
    // between fork and exec, the launch's sh step does.
    const cgroupProcs = this.spec.cgroupProcs ?? [];
    const argv = joinCgroupsFirst(this.spec.argv ?? this.spec.command, cgroupProcs, Bun.which('sh', { PATH: '/usr/bin:/bin' }) ?? '/bin/sh');
    // Behind launch steps a missing program would only show as an exit code: look first.
    if ((this.spec.argv || cgroupProcs.length) && !Bun.which(program, { PATH: this.spec.env.PATH ?? '', cwd: this.spec.dir ?? '/' })) {
      const message = `ProcessSpec.Command: cannot start "${program}": not found or not executable`;
      this.finish({ exitCode: 127, message, startError: message, time: Date.now() });
      return 1;
    }
    try {
      child = Bun.spawn(argv, {
        cwd: this.spec.dir, env: this.spec.env, detached: true,
        stdin: 'ignore', stdout: 'pipe', stderr: 'pipe',
        ...(this.spec.uid !== undefined ? { uid: this.spec.uid, gid: this.spec.gid } : {}),
      });
    } catch (err) {
      const reason = (err as Error).message;
      const message = `ProcessSpec.Command: cannot start "${this.spec.command[0]}": ${reason}`;
      this.finish({ exitCode: 127, message, startError: message, time: Date.now() });
      return 1;
    }
    const pgid = child.pid;
    const rec = pidRecord(pgid) ?? { pid: pgid, startTime: '' };
    writeJsonAtomic(path(this.taskDir, 'child'), rec);

    // Someone signalling the shim means "stop the task": pass it on to the whole group.
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
      process.on(sig, () => killGroup(pgid, sig));
    }
    process.on('SIGHUP', () => {}); // we have no terminal; never die of a hangup

    const pumps = Promise.all([this.pump(child.stdout, 'stdout'), this.pump(child.stderr, 'stderr')]);
    await child.exited;
    // The program is gone: anything it left in its group goes too (as a container's PID 1 would).
    killGroup(pgid, 'SIGKILL');
    // Signals land asynchronously: report the exit only once nothing of the group runs (bounded).
    for (let i = 0; i < 100 && groupMembers(pgid).length > 0; i++) {
      killGroup(pgid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Whatever left the group (setsid, double-forked daemons) is still in the task's cgroup.
    const cg = this.spec.cgroup;
    if (cg) await killCgroup(cg);
    // Output still buffered in the pipes is read to the end, unless something outside the group
    // holds them open: bounded.
    await Promise.race([pumps, new Promise((r) => setTimeout(r, 2_000))]);

    const sig = (child.signalCode ?? undefined) as string | undefined;
    const exitCode = sig ? 128 + (constants.signals[sig as keyof typeof constants.signals] ?? 0) : (child.exitCode ?? 255);
    if (this.spec.netns && !sig && !existsSync(path(this.taskDir, 'launched'))) {
      // It ended before the launch got inside the namespace: the program never ran.
      const reason = this.#lastErr || `the launch exited with code ${exitCode}`;
      const message = `cannot run the task in network namespace ${this.spec.netns}: ${reason}`;
      this.finish({ exitCode: LAUNCH_FAILED_EXIT, message, startError: message, time: Date.now() });
      return 0;
    }
    let message = sig ? `killed by ${sig}` : `exit code ${exitCode}`;
    if (exitCode === LAUNCH_FAILED_EXIT && (this.spec.argv || this.spec.cgroupProcs?.length)) message += ' (a launch step failed: see the task log)';
    // The OOM killer may have hit the program or one of its children: either way the limit was hit.
    const oomKilled = !!cg && exitCode !== 0 && oomKills(cg) > 0;
    if (oomKilled) message = `out of memory (Resources.Limits.MemoryBytes reached): ${message}`;
    this.finish({ exitCode, ...(sig ? { signal: sig } : {}), message, ...(oomKilled ? { oomKilled } : {}), time: Date.now() });
    return 0;
  }

  async pump(stream: ReadableStream<Uint8Array>, name: 'stdout' | 'stderr'): Promise<void> {
    const splitter = new LineSplitter();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        for (const line of splitter.push(decoder.decode(chunk, { stream: true }))) this.write(name, line);
      }
    } catch { /* the pipe broke: keep what we have */ }
    for (const line of splitter.flush()) this.write(name, line);
  }

  write(stream: 'stdout' | 'stderr', line: string): void {
    if (stream === 'stderr' && line.trim()) this.#lastErr = line.trim().slice(0, 500);
    const bytes = Buffer.from(encodeLogLine(stream, line, Date.now()));
    if (this.#logBytes + bytes.length > this.spec.logMaxBytes && this.#logBytes > 0) this.rotate();
    writeSync(this.#logFd, bytes);
    this.#logBytes += bytes.length;
  }

  rotate(): void {
    closeSync(this.#logFd);
    renameSync(path(this.taskDir, 'log'), path(this.taskDir, 'logPrev'));
    this.#logFd = openSync(path(this.taskDir, 'log'), 'a', 0o600);
    this.#logBytes = 0;
  }

  finish(rec: ExitRecord): void {
    try { closeSync(this.#logFd); } catch { /* already closed */ }
    writeJsonAtomic(path(this.taskDir, 'exit'), rec);
    try {
      appendFileSync(path(this.taskDir, 'shimLog'), `${new Date(rec.time).toISOString()} ${rec.message}\n`);
    } catch { /* the task dir is being removed */ }
  }
}

/** Signal a whole process group; false when it no longer exists. */
export function killGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  try { process.kill(-pgid, signal); return true; } catch { return false; }
}
