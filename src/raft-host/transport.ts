import type { Message } from '../raft/index.ts';

/** Carries raft messages between hosts. Delivery may drop, delay, duplicate or reorder; the core copes. */
export interface Transport {
  send(msgs: Message[]): void;
  /** Registers the one receiver; returns a function that unregisters it. */
  onMessage(handler: (m: Message) => void): () => void;
}
