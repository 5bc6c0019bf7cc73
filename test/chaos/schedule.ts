/**
 * The chaos suite's fault schedule: drawn whole from the seed before the cluster boots, so a seed
 * names one sequence of faults, their targets, holds and gaps. Targets that depend on the cluster's
 * state (the leader) are resolved when the fault starts; the others are fixed here by index.
 * One fault at a time: each is healed before the next starts, and every fault has a bound.
 */
import { seededRandom } from '../../src/lib/rng.ts';

export type FaultKind =
  | 'kill-leader' // kill -9 of the raft leader, restarted after the hold
  | 'kill-node' // kill -9 of any host (manager or worker), restarted after the hold
  | 'partition-halves' // managers split into a majority and a minority (workers spread over both)
  | 'partition-leader' // the leader (and maybe one more manager) cut off from the rest
  | 'one-way' // packets from one manager (the leader half the time) dropped on arrival at another
  | 'bridge' // two manager pairs that cannot hear each other, one manager in the middle hears all
  | 'netem' // packet loss and delay (tc netem) on one or two hosts' links
  | 'pause' // SIGSTOP, then SIGCONT: a host stalled (how a clock jump looks to the others)
  | 'disk-full'; // the data dir of the manager on a small file system filled up

export const FAULT_KINDS: FaultKind[] = ['kill-leader', 'kill-node', 'partition-halves', 'partition-leader', 'one-way', 'bridge', 'netem', 'pause', 'disk-full'];

export interface Fault {
  /** When it starts, ms after the workload began (planned: a slow heal pushes the rest back). */
  at: number;
  kind: FaultKind;
  holdMs: number;
  /** Uniform numbers in [0, 1) that pick the targets when the fault starts. */
  picks: number[];
  /** netem only: loss in percent, delay and jitter in ms. */
  netem?: { lossPct: number; delayMs: number; jitterMs: number };
}

export interface ScheduleOptions {
  seed: number;
  /** Faults start within this many ms of the workload's start. */
  durationMs: number;
  /** Kinds to leave out (e.g. disk-full where no tmpfs can be mounted). */
  without?: FaultKind[];
}

/** The faults of one run: the same seed and options give the same list. */
export function faultSchedule(opts: ScheduleOptions): Fault[] {
  if (!Number.isInteger(opts.seed)) throw new Error(`seed: expected an integer, got ${opts.seed}`);
  if (!(opts.durationMs > 0)) throw new Error(`durationMs: expected > 0, got ${opts.durationMs}`);
  const rnd = seededRandom(opts.seed);
  const between = (lo: number, hi: number) => Math.round(lo + rnd() * (hi - lo));
  const kinds = FAULT_KINDS.filter((k) => !opts.without?.includes(k));
  if (kinds.length === 0) throw new Error('without: every fault kind is left out');
  const faults: Fault[] = [];
  // A quiet start, so the history begins with the healthy cluster's reads.
  let at = between(2_000, 4_000);
  // Every kind once before any repeats (a short CI run still meets each), in a seeded order.
  let bag: FaultKind[] = [];
  while (at < opts.durationMs) {
    if (bag.length === 0) bag = shuffle(kinds, rnd);
    const kind = bag.shift()!;
    const holdMs = between(3_000, 8_000);
    const f: Fault = { at, kind, holdMs, picks: [rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), rnd()] };
    if (kind === 'netem') f.netem = { lossPct: between(5, 30), delayMs: between(20, 200), jitterMs: between(0, 50) };
    faults.push(f);
    at += holdMs + between(1_500, 4_000);
  }
  return faults;
}

function shuffle<T>(xs: T[], rnd: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Pick one of `xs` with a pick in [0, 1). */
export function pick<T>(xs: readonly T[], p: number): T {
  if (xs.length === 0) throw new Error('pick: nothing to pick from');
  return xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
}

/** `xs` in an order decided by `picks` (a Fisher–Yates with the given numbers, reused cyclically). */
export function arrange<T>(xs: readonly T[], picks: number[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(picks[i % picks.length]! * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
