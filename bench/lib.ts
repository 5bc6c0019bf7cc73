import * as fs from 'node:fs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, hostname, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';

/** The machine a figure was measured on: results are meaningless without it. */
export function machine() {
  return {
    hostname: hostname(),
    os: `${platform()} ${release()}`,
    arch: arch(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    bun: Bun.version,
    date: new Date().toISOString(),
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), min: s[0], max: s[s.length - 1] };
}

export interface Figure { name: string; value: number; unit: string; target?: string; anchor?: string; met?: boolean }

/** Print a figure next to its target or anchor, as the issues ask. */
export function report(f: Figure): Figure {
  const v = Number.isInteger(f.value) ? String(f.value) : f.value.toFixed(2);
  const verdict = f.met === undefined ? '' : f.met ? '  [met]' : '  [NOT met]';
  const extra = [f.target && `target ${f.target}`, f.anchor && `anchor ${f.anchor}`].filter(Boolean).join('; ');
  console.log(`  ${f.name.padEnd(44)} ${v.padStart(12)} ${f.unit.padEnd(10)} ${extra}${verdict}`);
  return f;
}

export function writeResult(name: string, data: unknown): string {
  const dir = join(import.meta.dir, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), ...(data as object) }, null, 2) + '\n');
  return file;
}

/**
 * CPU time a process has used so far, in seconds, from /proc/PID/stat (Linux; USER_HZ is 100).
 * Throws when the process is gone.
 */
export function cpuTimesOf(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name (which may hold spaces) start at the state; utime and stime are the 14th and 15th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
}

/** CPU seconds (user + system) a process has used so far; NaN when it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const c = cpuTimesOf(pid);
    return c.user + c.system;
  } catch {
    return NaN;
  }
}

export function rssOf(pid: number): number {
  const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8') as string;
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** The most RSS the process ever had (VmHWM): a reading of VmRSS misses what the collector freed before it. */
export function peakRssOf(pid: number): number {
  const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8') as string;
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Small appends + fdatasync in `dir` for `ms`: what one fsync-per-commit design could reach. */
export function fsyncRate(dir: string, ms: number): number {
  const path = join(dir, 'fsync-probe');
  const fd = fs.openSync(path, 'a');
  const buf = new Uint8Array(100);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
    n++;
  }
  const secs = (performance.now() - t0) / 1000;
  fs.closeSync(fd);
  fs.unlinkSync(path);
  return n / secs;
}
