export { UpdateSupervisor, type RolloutDecision, type RolloutInput } from './supervisor.ts';
export { DEFAULT_MONITOR_MS, isPaused, isRolling, isRollingBack, rolloutConfig, type RolloutConfig } from './config.ts';
