/**
 * Probes of a running cluster for bench/control-plane-scale.ts: API calls to one manager with their
 * latency, the managers' memory and the bytes of their raft state on disk, and bounded polling.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Daemon } from '../test/harness/index.ts';
import { cpuSecondsOf, peakRssOf, rssOf, stats } from './lib.ts';

/** A JSON call that must succeed; the error names the call and the answer. */
export async function call<T = any>(d: Daemon, path: string, init?: RequestInit): Promise<T> {
  const r = await d.api(path, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${path} on ${d.name}: ${r.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : null) as T;
}

export function post(d: Daemon, path: string, body: unknown): Promise<any> {
  return call(d, path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

/** Poll `check` until it returns a truthy value; throws naming `what` (and the last answer) after `boundMs`. */
export async function until<T>(what: string, check: () => Promise<T | null | false | undefined> | T | null | false | undefined, boundMs: number, everyMs = 250): Promise<T> {
  const deadline = performance.now() + boundMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${Math.round(boundMs / 1000)} s waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await Bun.sleep(everyMs);
  }
}

/** Latency of `samples` GETs of each path (body read in full), in ms. */
export async function latency(d: Daemon, paths: () => string, samples: number): Promise<ReturnType<typeof stats> & { bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < samples; i++) {
    const path = paths();
    const t0 = performance.now();
    const r = await d.api(path);
    const body = await r.arrayBuffer();
    ms.push(performance.now() - t0);
    if (!r.ok) throw new Error(`GET ${path} on ${d.name}: ${r.status} ${new TextDecoder().decode(body).slice(0, 300)}`);
    bytes = body.byteLength;
  }
  return { ...stats(ms), bytes };
}

/** Bytes of the files under `dir` (a manager's raft log and snapshots). */
export function dirBytes(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) {
      try { total += statSync(p).size; } catch {}
    }
  }
  return total;
}

/** `rssBytes` when read; `peakRssBytes` the most since the process started (VmHWM). */
export interface ManagerFootprint { name: string; pid: number; rssBytes: number; peakRssBytes: number; raftBytes: number; leader: boolean }

export function footprint(managers: Daemon[], leader: Daemon): ManagerFootprint[] {
  return managers.filter((m) => m.isRunning).map((m) => ({
    name: m.name,
    pid: m.proc!.pid,
    rssBytes: rssOf(m.proc!.pid),
    peakRssBytes: peakRssOf(m.proc!.pid),
    raftBytes: dirBytes(join(m.dataDir, 'raft')),
    leader: m === leader,
  }));
}

/** The manager among `candidates` whose raft replica says it leads now (GET /raft). */
export async function raftLeader(candidates: Daemon[]): Promise<Daemon | null> {
  for (const m of candidates) {
    if (!m.isRunning) continue;
    try {
      const r = await m.api('/raft', { signal: AbortSignal.timeout(2_000) });
      if (r.ok && (await r.json() as { Role: string }).Role === 'leader') return m;
    } catch {}
  }
  return null;
}

/** The raft commit index a manager reports (GET /raft); NaN when it does not answer. */
async function commitIndex(d: Daemon): Promise<number> {
  const r = await d.api('/raft', { signal: AbortSignal.timeout(5_000) }).catch(() => null);
  return r?.ok ? (await r.json() as { CommitIndex: number }).CommitIndex : NaN;
}

/**
 * What a step cost: CPU seconds of each process and the leader's raft entries, between two
 * readings. Tells where the time of the placement steps goes (docs/scale.md, stop 25).
 */
export interface StepCost {
  cpuSeconds: Record<string, number>;
  raftEntries: number;
}

export async function costReading(managers: Daemon[], leader: Daemon, others: { name: string; pid: number }[]): Promise<StepCost> {
  const cpuSeconds: Record<string, number> = {};
  for (const m of managers) if (m.isRunning) cpuSeconds[m === leader ? `${m.name} (leader)` : m.name] = cpuSecondsOf(m.proc!.pid);
  for (const o of others) cpuSeconds[o.name] = cpuSecondsOf(o.pid);
  // Not GET /metrics: its process metrics walk the heap, a cost that would land in the step measured.
  return { cpuSeconds, raftEntries: await commitIndex(leader) };
}

export function costBetween(a: StepCost, b: StepCost): StepCost {
  const cpuSeconds: Record<string, number> = {};
  for (const k of Object.keys(b.cpuSeconds)) cpuSeconds[k] = Math.round(((b.cpuSeconds[k] ?? NaN) - (a.cpuSeconds[k] ?? NaN)) * 100) / 100;
  return { cpuSeconds, raftEntries: b.raftEntries - a.raftEntries };
}
