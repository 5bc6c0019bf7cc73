import type { Proposer, StateMachine } from './proposer.ts';

/**
 * A proposer with no disk, for unit tests of the stages: entries are ordered and applied on the
 * next microtask, exactly as a durable log would apply them, just without fsync.
 */
export class MemoryLog implements Proposer {
  private index = 0;
  constructor(private readonly sm: StateMachine) {}

  async propose(entry: Uint8Array): Promise<unknown> {
    await Promise.resolve();
    return this.sm.apply(++this.index, entry);
  }

  async readBarrier(): Promise<void> {}
}

import { MemoryStore } from './store.ts';

/**
 * A store backed by a MemoryLog: `const store = memoryStore()` in a test. Its task updates are
 * written as patches, as a daemon's are once every manager can apply them (src/store/patch.ts).
 */
export function memoryStore(): MemoryStore {
  const store = new MemoryStore();
  store.taskPatches = true;
  store.proposer = new MemoryLog(store);
  return store;
}
