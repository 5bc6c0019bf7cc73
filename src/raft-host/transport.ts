import type { Message, NodeId } from '../raft/index.ts';

/** Carries raft messages between hosts. Delivery may drop, delay, duplicate or reorder; the core copes. */
export interface Transport {
  send(msgs: Message[]): void;
  /** Registers the one receiver; returns a function that unregisters it. */
  onMessage(handler: (m: Message) => void): () => void;
  /**
   * Whether a link to `nodeId` is up now (false: it went down, or none could be opened). Optional:
   * a transport without it never tells the host that its leader is gone (see RaftHost's ticks).
   */
  reachable?(nodeId: NodeId): boolean;
}
