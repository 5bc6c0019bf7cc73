export * from './objects.ts';
export * from './task-state.ts';
export * from './runtime.ts';
export * from './secrets.ts';
export * from './upgrade.ts';
