/**
 * A tiny seeded random source (mulberry32) for tests, fuzzers and benchmarks that must replay
 * exactly from a printed seed. Not for anything secret. The simulator has its own richer `Rng`
 * (test/sim/rng.ts) with a longer period.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
