/**
 * The seam between the store and whatever makes its writes durable and ordered: a local log on a
 * one-host cluster today, Raft tomorrow. Callers of the store never see which.
 */
export interface Proposer {
  /**
   * Make `entry` durable and ordered, hand it to the state machine's apply() (on every replica), and
   * resolve with what apply() returned on this one. Rejects when this replica cannot propose
   * (not the leader, no quorum) or when `signal` aborts before the entry was accepted.
   */
  propose(entry: Uint8Array, signal?: AbortSignal): Promise<unknown>;
  /** Resolves once this replica has applied everything committed before the call (linearizable read). */
  readBarrier?(signal?: AbortSignal): Promise<void>;
}

/** What a proposer drives: the store. apply() must be deterministic: same entries, same state. */
export interface StateMachine {
  apply(index: number, entry: Uint8Array): unknown;
  snapshot(): Uint8Array;
  restore(snapshot: Uint8Array, index: number): void;
}
