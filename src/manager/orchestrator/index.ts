export { Orchestrator, type OrchestratorOptions } from './orchestrator.ts';
export { restartPolicy, shouldRestart, type Policy, DEFAULT_RESTART_DELAY_MS } from './restart.ts';
export { isOutdated, newTask, replicasOf, isGlobal } from './slots.ts';
