/**
 * Footprint (issue #18): the size of dist/shoal and what part of it is ours (the rest is the Bun
 * runtime), and the idle memory of a manager and of a worker of a 1-manager + 1-worker loopback
 * cluster once it has settled: the median of several VmRSS samples, with how much of it is
 * file-backed (pages of the executable) and the proportional set size (Pss) from smaps_rollup.
 */
import { readFileSync, statSync } from 'node:fs';
import { Cluster, type Daemon, requireBinary, SHOAL } from '../test/harness/index.ts';
import { type Figure, report } from './lib.ts';

const MiB = 2 ** 20;

/** Size of the ELF section `name` of `file` (the compiled payload lives in `.bun`), 0 if absent. */
export function elfSectionSize(file: string, name: string): number {
  const b = readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return 0; // 64-bit ELF only
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const strtab = shoff + b.readUInt16LE(0x3e) * shentsize;
  const strOff = Number(b.readBigUInt64LE(strtab + 0x18));
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize;
    const n = strOff + b.readUInt32LE(h);
    if (b.toString('latin1', n, b.indexOf(0, n)) === name) return Number(b.readBigUInt64LE(h + 0x20));
  }
  return 0;
}

/** kB fields of a /proc file ("VmRSS:   1234 kB"), in bytes. */
function kbFields(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB/gm)) out[m[1]!] = Number(m[2]) * 1024;
  return out;
}

export interface Memory { rss: number; rssFile: number; rssAnon: number; pss: number; pssFile: number; pssAnon: number }

export function memoryOf(pid: number): Memory {
  const st = kbFields(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const sm = kbFields(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return { rss: st.VmRSS!, rssFile: st.RssFile!, rssAnon: st.RssAnon!, pss: sm.Pss!, pssFile: sm.Pss_File ?? NaN, pssAnon: sm.Pss_Anon ?? NaN };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median of each field over `n` samples `everyMs` apart. */
async function idleMemory(d: Daemon, n = 9, everyMs = 500): Promise<Memory> {
  const samples: Memory[] = [];
  for (let i = 0; i < n; i++) {
    samples.push(memoryOf(d.proc!.pid));
    if (i < n - 1) await Bun.sleep(everyMs);
  }
  const keys = Object.keys(samples[0]!) as (keyof Memory)[];
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])) as unknown as Memory;
}

function reportMemory(role: string, m: Memory, goalMiB: number): Figure[] {
  return [
    report({ name: `idle ${role} RSS (median of 9 over 4 s)`, value: m.rss / MiB, unit: 'MiB', target: `< ${goalMiB} MiB`, met: m.rss < goalMiB * MiB }),
    report({ name: `  of which file-backed (RssFile)`, value: m.rssFile / MiB, unit: 'MiB' }),
    report({ name: `  of which anonymous (RssAnon)`, value: m.rssAnon / MiB, unit: 'MiB' }),
    report({ name: `idle ${role} Pss (smaps_rollup)`, value: m.pss / MiB, unit: 'MiB' }),
    report({ name: `  Pss file-backed / anonymous`, value: m.pssFile / MiB, unit: 'MiB', anchor: `anon ${(m.pssAnon / MiB).toFixed(2)} MiB` }),
  ];
}

export async function run(): Promise<{ figures: Figure[] }> {
  requireBinary();
  console.log('footprint (dist/shoal; 1 manager + 1 worker on loopback, idle)');
  const figures: Figure[] = [];
  const size = statSync(SHOAL).size;
  const ours = elfSectionSize(SHOAL, '.bun');
  figures.push(report({ name: 'binary size (dist/shoal)', value: size / 1e6, unit: 'MB', target: '≤ 115 MB', anchor: `${size} bytes, ${(size / MiB).toFixed(2)} MiB`, met: size <= 115e6 }));
  figures.push(report({ name: '  of which ours (.bun section: code+bytecode)', value: ours / 1e6, unit: 'MB' }));
  figures.push(report({ name: '  of which the Bun runtime', value: (size - ours) / 1e6, unit: 'MB' }));

  await using c = Cluster.loopback();
  // Each daemon from its own copy of the executable, as on two hosts: daemons mapping one file share
  // its pages, and the kernel leaves shared pages alone when a daemon pages its own out (pageout.ts).
  const { managers, workers } = await c.boot({ managers: 1, workers: 1, ownBinaries: true });
  // Settle: the join's certificate and state exchange are done once both report ready; give the
  // first heartbeats and timers a few seconds more before sampling.
  // FOOTPRINT_SETTLE_MS=120000 measures a worker that has idled for minutes (docs/footprint.md:
  // what the start gave back grows partly back).
  await Bun.sleep(Number(process.env.FOOTPRINT_SETTLE_MS ?? 3000));
  const [m, w] = await Promise.all([idleMemory(managers[0]!), idleMemory(workers[0]!)]);
  figures.push(...reportMemory('manager', m, 120));
  figures.push(...reportMemory('worker', w, 80));
  return { figures };
}

if (import.meta.main) await run();
