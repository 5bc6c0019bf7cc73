export { Scheduler, type SchedulerOptions, occupiesNode, pickNode } from './scheduler.ts';
export * from './filters.ts';
export * from './constraints.ts';
