export * from './actions.ts';
export * from './proposer.ts';
export { MemoryStore } from './store.ts';
export { Tx } from './tx.ts';
export { MemoryLog, memoryStore } from './memory-log.ts';
