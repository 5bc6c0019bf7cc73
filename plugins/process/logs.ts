/** Reading a task's output.log (and its rotated predecessor) for `Controller.logs`. */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { LogLine, LogOptions } from '../../src/executor/contract.ts';
import { pause, selectLines } from '../../src/executor/logs.ts';
import { decodeLogLine, groupMembers, path, procStat } from './files.ts';

const FOLLOW_POLL_MS = 50;
const NEWLINE = 0x0a;

/** Parse the complete lines of `buf`; returns them and how many bytes they took. */
function parse(buf: Uint8Array): { lines: LogLine[]; used: number } {
  const end = buf.lastIndexOf(NEWLINE);
  if (end < 0) return { lines: [], used: 0 };
  const lines: LogLine[] = [];
  for (const text of new TextDecoder().decode(buf.subarray(0, end)).split('\n')) {
    const l = text ? decodeLogLine(text) : undefined;
    if (l) lines.push(l);
  }
  return { lines, used: end + 1 };
}

function readFrom(file: string, offset: number): Uint8Array {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch { return new Uint8Array(0); }
  try {
    const size = statSync(file).size;
    if (size <= offset) return new Uint8Array(0);
    const buf = new Uint8Array(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n);
  } finally { closeSync(fd); }
}

function inode(file: string): number | undefined {
  try { return statSync(file).ino; } catch { return undefined; }
}

/**
 * Lines of the task's output. With `follow`, keeps polling for new lines until `ended()` is true
 * and everything written before the end has been read, or until `opts.signal` aborts.
 */
export async function* readLogs(taskDir: string, opts: LogOptions, ended: () => boolean): AsyncGenerator<LogLine> {
  const logFile = path(taskDir, 'log');
  const prevFile = path(taskDir, 'logPrev');
  let ino = inode(logFile);
  const prev = existsSync(prevFile) ? parse(readFileSync(prevFile)).lines : [];
  const cur = parse(readFrom(logFile, 0));
  let offset = cur.used;
  yield* selectLines([...prev, ...cur.lines], opts);
  if (!opts.follow) return;

  const keep = (l: LogLine) => opts.since === undefined || l.time >= opts.since;
  for (;;) {
    if (opts.signal?.aborted) return;
    const wasEnded = ended();
    const nowIno = inode(logFile);
    if (nowIno !== ino && ino !== undefined) {
      // Rotated: finish the old file (now output.log.1), then start the new one from its beginning.
      if (inode(prevFile) === ino) for (const l of parse(readFrom(prevFile, offset)).lines) if (keep(l)) yield l;
      offset = 0;
    }
    ino = nowIno;
    const fresh = parse(readFrom(logFile, offset));
    offset += fresh.used;
    for (const l of fresh.lines) if (keep(l)) yield l;
    if (wasEnded && fresh.used === 0) return;
    await pause(FOLLOW_POLL_MS, opts.signal);
  }
}

const CLOCK_TICK_NS = 1e9 / 100; // USER_HZ is 100 on Linux
const PAGE_BYTES = 4096;

/** CPU time and resident memory summed over every process in group `pgid`. */
export function groupStats(pgid: number): { cpuNanos: number; memoryBytes: number; count: number } {
  let cpuNanos = 0, memoryBytes = 0, count = 0;
  for (const p of groupMembers(pgid)) {
    const st = procStat(p);
    if (!st) continue;
    count++;
    cpuNanos += (st.utime + st.stime) * CLOCK_TICK_NS;
    try { memoryBytes += Number(readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]) * PAGE_BYTES; } catch { /* gone */ }
  }
  return { cpuNanos, memoryBytes, count };
}
