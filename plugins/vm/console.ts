/**
 * The guest's exit status, read from its serial console (the task's log): the last line of the
 * form `SHOAL-EXIT <code>` that the guest printed before it powered off (README.md). QEMU's own
 * diagnostics are the log's stderr lines.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { ExitStatus, LogLine } from '../../src/executor/contract.ts';
import { decodeLogLine, path, type ExitRecord } from '../process/files.ts';

/** Anchored at the end: kernel messages may share the line's start when the guest prints it. */
const MARKER = /(?:^|\s)SHOAL-EXIT (\d{1,3})\s*$/;
/** The marker is among the last things a guest prints: the log's end is enough. */
const TAIL_BYTES = 64 * 1024;

function tailLines(file: string): LogLine[] {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch { return []; }
  try {
    const size = statSync(file).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    const n = readSync(fd, buf, 0, buf.length, start);
    const lines = buf.subarray(0, n).toString('utf8').split('\n');
    if (start > 0) lines.shift(); // a partial first line
    return lines.map((l) => (l ? decodeLogLine(l) : undefined)).filter((l): l is LogLine => !!l);
  } finally { closeSync(fd); }
}

/** The last lines of the task's log, the rotated file's first. */
export function lastLogLines(taskDir: string): LogLine[] {
  return [...tailLines(path(taskDir, 'logPrev')), ...tailLines(path(taskDir, 'log'))];
}

/** The code in the guest's last `SHOAL-EXIT` console line, if it printed one. */
export function guestExitCode(lines: LogLine[]): number | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (l.stream !== 'stdout') continue;
    const m = MARKER.exec(l.line);
    if (m) return Number(m[1]) & 0xff;
  }
  return undefined;
}

/** QEMU's last complaints (stderr lines), for messages. */
export function qemuComplaint(lines: LogLine[], max = 3): string {
  return lines.filter((l) => l.stream === 'stderr' && !/warning:/.test(l.line)).slice(-max).map((l) => l.line.trim()).join('; ');
}

/**
 * The task's exit status from QEMU's (as the shim recorded it) and the console: QEMU killed by a
 * signal is reported as such (the stop's kill: SIGKILL, 137); QEMU ended by itself is the guest's
 * marker, or a failure when there is none.
 */
export function vmExitStatus(qemu: ExitRecord | ExitStatus, lines: LogLine[]): ExitStatus {
  if (qemu.signal) return { exitCode: qemu.exitCode, signal: qemu.signal, message: `VM killed: QEMU ${qemu.message}` };
  const code = guestExitCode(lines);
  if (code !== undefined) return { exitCode: code, message: `exit code ${code}` };
  const why = qemuComplaint(lines);
  const qemuSays = qemu.exitCode !== 0 ? ` (QEMU exit code ${qemu.exitCode}${why ? `: ${why}` : ''})` : '';
  return { exitCode: 255, message: `VM exited without an exit status${qemuSays}` };
}
