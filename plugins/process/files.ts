/**
 * What the process executor keeps in a task's directory, so that a restarted daemon (a fresh
 * controller) knows everything an earlier one did:
 *
 *   spec.json    what to run: resolved command, env, dir, uid/gid (written by prepare)
 *   shim.json    the shim's pid and /proc start time (written by the shim); `shared` when it is a
 *                supervisor of many tasks (launcher.ts), which is never killed for one task's sake
 *   child.json   the task process's pid (= its process group) and start time (written by the shim)
 *   exit.json    how the task ended, or why it could not start (written by the shim, atomically)
 *   output.log   the task's stdout/stderr, one JSON object per line: {"t":ms,"s":"o"|"e","l":text}
 *   output.log.1 the previous log file after rotation
 *   shim.log     the shim's own diagnostics
 *   resolv.conf  the task's resolvers, bind-mounted over /etc/resolv.conf (overlay networks only)
 *   launched     created by the launch once inside the worker's network namespace (ditto)
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExitStatus, LogLine } from '../../src/executor/contract.ts';
import type { TaskCgroup } from './cgroup.ts';

export const FILES = {
  spec: 'spec.json', shim: 'shim.json', child: 'child.json', exit: 'exit.json',
  log: 'output.log', logPrev: 'output.log.1', shimLog: 'shim.log',
  resolv: 'resolv.conf', launched: 'launched',
} as const;

export interface ShimSpec {
  /** ProcessSpec.Command, as given (for messages and the "is it there" check). */
  command: string[];
  /** What the shim spawns: `command` behind its launch steps (see launch.ts); absent = `command`. */
  argv?: string[];
  /** The task's cgroups: the shim kills what is left in them when the program ends. */
  cgroup?: TaskCgroup;
  /**
   * cgroup.procs files the program joins before it execs (then `argv` has no cgroup step): the native
   * shim writes them between fork and exec; the JavaScript shim, which cannot, puts launch.ts's
   * `sh` step in front.
   */
  cgroupProcs?: string[];
  env: Record<string, string>;
  dir?: string;
  uid?: number;
  gid?: number;
  /** Rotate output.log past this size (one previous file is kept). */
  logMaxBytes: number;
  /**
   * The network namespace the launch enters (`TaskNetwork.netns`): until the launch has created
   * the `launched` file the program has not run, and an exit then means the namespace was not entered.
   */
  netns?: string;
}

export interface PidRecord { pid: number; startTime: string; shared?: boolean }

export interface ExitRecord extends ExitStatus {
  time: number;
  /**
   * Set when the program could not be started at all; exitCode is then 127 (no such program) or
   * 125 (a launch step failed: the network namespace could not be entered).
   */
  startError?: string;
  /** The kernel's OOM killer killed a process of the task (its memory limit was reached). */
  oomKilled?: boolean;
}

export function path(taskDir: string, file: keyof typeof FILES): string {
  return join(taskDir, FILES[file]);
}

/** Write a file so that readers see either nothing or all of it. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp${process.pid}`;
  // spec.json holds the task's environment, secrets included: owner-only.
  writeFileSync(tmp, JSON.stringify(value) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/** `writeJsonAtomic` off the event loop (the daemon writes a spec for each task it starts). */
export async function writeJsonAtomicAsync(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp${process.pid}`;
  await writeFile(tmp, JSON.stringify(value) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

export function readJson<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  try { return JSON.parse(readFileSync(file, 'utf8')) as T; } catch { return undefined; }
}

// ---------------------------------------------------------------- /proc

interface ProcStat { state: string; pgrp: number; utime: number; stime: number; startTime: string }

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); field N is f[N - 3].
  return { state: f[0], pgrp: Number(f[2]), utime: Number(f[11]), stime: Number(f[12]), startTime: f[19] };
}

/** Live (non-zombie) members of process group `pgid`, from a scan of /proc. */
export function groupMembers(pgid: number): number[] {
  let names: string[] = [];
  try { names = readdirSync('/proc'); } catch { return []; }
  const out: number[] = [];
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const st = procStat(Number(n));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(n));
  }
  return out;
}

export function pidRecord(pid: number): PidRecord | undefined {
  const st = procStat(pid);
  return st && { pid, startTime: st.startTime };
}

/** The recorded process is still the same process (not a reused pid) and not a zombie. */
export function isAlive(rec: PidRecord | undefined): boolean {
  if (!rec) return false;
  const st = procStat(rec.pid);
  return !!st && st.startTime === rec.startTime && st.state !== 'Z' && st.state !== 'X';
}

// ---------------------------------------------------------------- log lines

const MAX_LINE_CHARS = 16 * 1024;

export function encodeLogLine(stream: LogLine['stream'], line: string, time: number): string {
  return JSON.stringify({ t: time, s: stream === 'stdout' ? 'o' : 'e', l: line }) + '\n';
}

export function decodeLogLine(text: string): LogLine | undefined {
  try {
    const o = JSON.parse(text) as { t: number; s: string; l: string };
    return { time: o.t, stream: o.s === 'e' ? 'stderr' : 'stdout', line: o.l };
  } catch { return undefined; }
}

/** Split a chunk stream into lines; long lines are cut at MAX_LINE_CHARS so memory stays bounded. */
export class LineSplitter {
  #partial = '';
  push(text: string): string[] {
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop()!;
    const out: string[] = [];
    for (const p of parts) out.push(...cut(p.endsWith('\r') ? p.slice(0, -1) : p));
    while (this.#partial.length > MAX_LINE_CHARS) {
      out.push(this.#partial.slice(0, MAX_LINE_CHARS));
      this.#partial = this.#partial.slice(MAX_LINE_CHARS);
    }
    return out;
  }
  flush(): string[] {
    const rest = this.#partial;
    this.#partial = '';
    return rest ? cut(rest) : [];
  }
}

function cut(line: string): string[] {
  if (line.length <= MAX_LINE_CHARS) return [line];
  const out: string[] = [];
  for (let i = 0; i < line.length; i += MAX_LINE_CHARS) out.push(line.slice(i, i + MAX_LINE_CHARS));
  return out;
}
