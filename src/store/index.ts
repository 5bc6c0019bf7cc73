export * from './actions.ts';
export * from './proposer.ts';
export { BatchTooLargeError, MAX_BATCH_BYTES, MemoryStore } from './store.ts';
export { Tx } from './tx.ts';
export { MemoryLog, memoryStore } from './memory-log.ts';
