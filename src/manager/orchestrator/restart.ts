/**
 * Restart policy: whether a task that stopped on its own gets a successor in its slot, and when.
 * `TaskTemplate.RestartPolicy` with Docker's defaults: condition `any`, delay 5 s, unlimited attempts,
 * no window.
 */
import { NS_PER_MS, type RestartCondition, type Task, type TaskSpec } from '../../types/index.ts';

export interface Policy {
  condition: RestartCondition;
  delayMs: number;
  /** 0 = unlimited. */
  maxAttempts: number;
  /** 0 = attempts are counted over the slot's whole life (on the task: RestartAttempts). */
  windowMs: number;
}

export const DEFAULT_RESTART_DELAY_MS = 5_000;

export function restartPolicy(spec: TaskSpec): Policy {
  const p = spec.RestartPolicy ?? {};
  const ms = (ns: number | undefined, dflt: number) => (typeof ns === 'number' && ns >= 0 ? Math.floor(ns / NS_PER_MS) : dflt);
  return {
    condition: p.Condition ?? 'any',
    delayMs: ms(p.Delay, DEFAULT_RESTART_DELAY_MS),
    maxAttempts: Math.max(0, p.MaxAttempts ?? 0),
    windowMs: ms(p.Window, 0),
  };
}

/**
 * Whether `task`, which reached a terminal state while meant to run, is to be restarted.
 * `recentMs` are the times (clock ms) of this slot's earlier restarts, for a windowed MaxAttempts.
 */
export function shouldRestart(task: Task, policy: Policy, recentMs: readonly number[], nowMs: number): boolean {
  if (policy.condition === 'none') return false;
  if (policy.condition === 'on-failure' && task.Status.State !== 'failed' && task.Status.State !== 'rejected') return false;
  if (policy.maxAttempts === 0) return true;
  if (policy.windowMs > 0) return recentMs.filter((t) => t > nowMs - policy.windowMs).length < policy.maxAttempts;
  return (task.RestartAttempts ?? 0) < policy.maxAttempts;
}
