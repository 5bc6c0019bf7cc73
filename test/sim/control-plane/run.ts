/**
 * One seed of the control-plane simulation: boot, a chaos phase of seeded workload and faults with
 * the continuous invariants checked after every step, then healing and a bounded wait for the
 * cluster to converge. Deterministic: the same seed gives the same result, trace and digest.
 */
import { createHash } from 'node:crypto';
import { checkAgentsDisjoint, checkReplicaBound, convergenceGap, PlacementWatch } from './invariants.ts';
import { World } from './world.ts';
import { type Tally, Workload } from './workload.ts';

export interface CpOptions {
  seed: number;
  agents?: number;
  managers?: number;
  /** Simulated ms of workload and faults. */
  chaosMs?: number;
  /** Simulated ms after healing within which the cluster must converge. */
  convergeMs?: number;
}

export interface CpResult {
  seed: number;
  ok: boolean;
  error?: string;
  trace?: string[];
  /** Simulated ms at the end. */
  simMs: number;
  steps: number;
  /** Simulated ms from healing to convergence. */
  convergedAfterMs?: number;
  tally: Tally;
  storeIndex: number;
  /** A hash of the final store's tasks and services (placement and states): equal for equal runs. */
  digest: string;
}

export const DEFAULT_CHAOS_MS = 60_000;
export const DEFAULT_CONVERGE_MS = 120_000;

export function replayCommand(seed: number): string {
  return `npm run sim -- --control-plane --seeds 1 --seed ${seed}`;
}

export async function runControlPlaneSeed(o: CpOptions): Promise<CpResult> {
  const w = new World(o.seed, o.agents ?? 5, o.managers ?? 3);
  const workload = new Workload(w);
  const placement = new PlacementWatch(w.store);
  const chaosMs = o.chaosMs ?? DEFAULT_CHAOS_MS;
  const convergeMs = o.convergeMs ?? DEFAULT_CONVERGE_MS;
  const continuous = () => placement.violation ?? checkReplicaBound(w.store) ?? checkAgentsDisjoint(w.agents);
  let error: string | null = null;
  let convergedAfterMs: number | undefined;
  try {
    await w.boot();
    const tick = () => {
      if (w.nowMs >= chaosMs) return;
      workload.act();
      w.sim.after(w.rng.range(200, 2_000), tick);
    };
    w.sim.after(1_000, tick);
    error = await w.runUntil(chaosMs, continuous);
    if (!error) {
      w.chaos = false;
      workload.heal();
      if (w.electing) w.log('heal: waiting for the election under way');
      const healedAt = w.nowMs;
      let gap: string | null = 'not checked yet';
      for (let t = healedAt + 500; t <= healedAt + convergeMs && !error; t += 500) {
        error = await w.runUntil(t, continuous);
        gap = w.electing ? 'no leader' : convergenceGap(w.store, w.agents);
        if (!gap) { convergedAfterMs = w.nowMs - healedAt; break; }
      }
      if (!error && gap) error = `did not converge within ${convergeMs} ms of healing: ${gap}`;
    }
  } catch (e) {
    error = `crashed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`;
  } finally {
    placement.stop();
    await w.shutdown();
  }
  return {
    seed: o.seed,
    ok: !error,
    ...(error ? { error, trace: w.lastTrace() } : {}),
    simMs: w.nowMs,
    steps: w.steps,
    ...(convergedAfterMs !== undefined ? { convergedAfterMs } : {}),
    tally: workload.tally,
    storeIndex: w.store.index,
    digest: digest(w),
  };
}

function digest(w: World): string {
  const h = createHash('sha256');
  for (const s of w.store.list('services')) h.update(`${s.ID} ${s.Spec.Name} ${s.Version.Index} ${s.UpdateStatus?.State ?? ''}\n`);
  for (const t of w.store.list('tasks')) h.update(`${t.ID} ${t.ServiceID} ${t.Slot} ${t.NodeID} ${t.Status.State} ${t.DesiredState}\n`);
  for (const l of w.trace) h.update(l);
  return h.digest('hex').slice(0, 16);
}
