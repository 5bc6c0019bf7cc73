/**
 * The rollout configuration in force for a service: `UpdateConfig`, or `RollbackConfig` while the
 * service rolls back, with swarmkit's defaults filled in (Parallelism 1, Delay 0, FailureAction
 * pause, Monitor 5 s, MaxFailureRatio 0, Order stop-first).
 */
import { NS_PER_MS, type Service, type UpdateConfig, type UpdateState } from '../../../types/index.ts';

export type FailureAction = NonNullable<UpdateConfig['FailureAction']>;

export interface RolloutConfig {
  /** 0 = every slot at once. */
  parallelism: number;
  delayMs: number;
  failureAction: FailureAction;
  monitorMs: number;
  maxFailureRatio: number;
  startFirst: boolean;
}

export const DEFAULT_MONITOR_MS = 5_000;

const ms = (ns: number | undefined, dflt: number) => (typeof ns === 'number' && ns >= 0 ? Math.floor(ns / NS_PER_MS) : dflt);

export function isRollingBack(s: Service): boolean {
  return s.UpdateStatus?.State?.startsWith('rollback') ?? false;
}

/** An update or rollback that is under way (not paused, not finished). */
export function isRolling(state: UpdateState | undefined): boolean {
  return state === 'updating' || state === 'rollback_started';
}

export function isPaused(state: UpdateState | undefined): boolean {
  return state === 'paused' || state === 'rollback_paused';
}

export function rolloutConfig(s: Service): RolloutConfig {
  const c = (isRollingBack(s) ? s.Spec.RollbackConfig : s.Spec.UpdateConfig) ?? {};
  return {
    parallelism: Math.max(0, Math.floor(c.Parallelism ?? 1)),
    delayMs: ms(c.Delay, 0),
    failureAction: c.FailureAction ?? 'pause',
    monitorMs: ms(c.Monitor, DEFAULT_MONITOR_MS),
    maxFailureRatio: Math.min(1, Math.max(0, c.MaxFailureRatio ?? 0)),
    startFirst: c.Order === 'start-first',
  };
}
