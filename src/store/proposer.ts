/**
 * The seam between the store and whatever makes its writes durable and ordered: the raft host
 * (src/raft-host/) in the daemon, even with one voter; MemoryLog in unit tests of the stages.
 * Callers of the store never see which.
 */
export interface Proposer {
  /**
   * Make `entry` durable and ordered, hand it to the state machine's apply() (on every replica), and
   * resolve with what apply() returned on this one. Rejects when this replica cannot propose
   * (not the leader, no quorum) or when `signal` aborts before the entry was accepted; the raft
   * host's errors (NotLeaderError, ProposalLostError, OutcomeUnknownError) say which.
   *
   * `local` is what `entry` encodes, as the proposer built it: handed to this replica's apply()
   * with the entry, so the replica that proposed need not decode its own entries (the others do).
   * A proposer may drop it (apply() then decodes).
   */
  propose(entry: Uint8Array, signal?: AbortSignal, local?: unknown): Promise<unknown>;
  /** Resolves once this replica has applied everything committed before the call (linearizable read). */
  readBarrier?(signal?: AbortSignal): Promise<void>;
}

/**
 * Thrown by apply() for an entry this build cannot read (an action an older build does not know).
 * The other replicas applied it, so skipping it would part this one from them: the proposer stops
 * this replica instead (the raft host halts), until it runs a build that reads the log.
 */
export class UnreadableEntryError extends Error {
  override readonly name = 'UnreadableEntryError';
}

/** What a proposer drives: the store. apply() must be deterministic: same entries, same state. */
export interface StateMachine {
  /**
   * Called once per committed entry, in index order. The returned value resolves the proposer's
   * promise. `local`: the proposal's own `local` when this replica proposed the entry (it must be
   * what `entry` decodes to), else absent.
   */
  apply(index: number, entry: Uint8Array, local?: unknown): unknown;
  /** The whole state, to be restored with restore(); taken at the last applied index. */
  snapshot(): Uint8Array;
  restore(snapshot: Uint8Array, index: number): void;
}
