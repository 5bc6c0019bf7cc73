export { JobOrchestrator, type JobOrchestratorOptions } from './jobs.ts';
export { isJob, jobIteration, jobKind, replicatedJobOf, type JobKind } from './mode.ts';
export { planJob, type JobMemory, type JobPlan } from './plan.ts';
