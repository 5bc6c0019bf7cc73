/**
 * After a start, most of the executable's pages a daemon touched (the Bun runtime's machine code, the
 * start's bytecode) are never touched again, yet they stay mapped and count in its RSS: ~53 MiB of an
 * idle worker's ~82 MiB was file-backed (docs/footprint.md). madvise(MADV_PAGEOUT) on the executable's
 * own mappings unmaps them; they stay in the page cache, so a page used again comes back with a minor
 * fault, and the RSS then shows the pages the daemon really uses. Nothing anonymous is touched (the
 * heap is never paged out by this).
 */
import { readFileSync } from 'node:fs';

const MADV_PAGEOUT = 21; // Linux ≥ 5.4

/** The [start, end) ranges of `/proc/self/maps` lines that map `file`. */
export function mappingsOf(maps: string, file: string): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const line of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s+(.+)$/.exec(line);
    if (!m) continue;
    // A replaced executable (fleet upgrade) is still mapped as "<path> (deleted)".
    const path = m[3]!.replace(/ \(deleted\)$/, '');
    if (path === file) out.push([BigInt(`0x${m[1]}`), BigInt(`0x${m[2]}`)]);
  }
  return out;
}

type Madvise = (addr: bigint, len: bigint, advice: number) => number;
let madvise: Madvise | null | undefined;

async function loadMadvise(): Promise<Madvise | null> {
  if (madvise !== undefined) return madvise;
  try {
    const { dlopen, FFIType } = await import('bun:ffi');
    const lib = dlopen('libc.so.6', { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
    madvise = (a, l, adv) => lib.symbols.madvise(a, l, adv) as number;
  } catch {
    // Not glibc, or no FFI in this runtime: the daemon just keeps those pages mapped.
    madvise = null;
  }
  return madvise;
}

/** Pages out the executable's mappings; the number of mappings it was accepted for (0: not available). */
export async function pageOutExecutable(file = process.execPath): Promise<number> {
  if (process.platform !== 'linux') return 0;
  const fn = await loadMadvise();
  if (!fn) return 0;
  let ok = 0;
  for (const [a, b] of mappingsOf(readFileSync('/proc/self/maps', 'utf8'), file)) {
    if (fn(a, b - a, MADV_PAGEOUT) === 0) ok++;
  }
  return ok;
}
