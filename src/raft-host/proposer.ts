// The contract between the store and the replicated log. The store proposes batches of actions and
// applies committed ones through its StateMachine; the raft host implements Proposer.
import type { NodeId } from '../raft/index.ts';

export interface Proposer {
  /**
   * Resolves after the entry is committed and applied, with the value the state machine's apply()
   * returned. Rejects with NotLeaderError (carrying the leader id when known), ProposalLostError,
   * OutcomeUnknownError, or the signal's reason when aborted.
   */
  propose(entry: Uint8Array, signal?: AbortSignal): Promise<unknown>;
}

export interface StateMachine {
  /** Called once per committed entry, in index order. The returned value resolves the proposer's promise. */
  apply(index: number, entry: Uint8Array): unknown;
  /** The whole state, to be restored with restore(); taken at the last applied index. */
  snapshot(): Uint8Array;
  restore(snapshot: Uint8Array, index: number): void;
}

/** This node is not the leader; send the request to `leader` (null when unknown: retry later). */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  constructor(readonly leader: NodeId | null) {
    super(leader ? `not the raft leader; the leader is ${leader}` : 'not the raft leader; no leader is known yet, retry shortly');
  }
}

/** The entry will never be applied (overwritten after a leader change or dropped by the core): safe to retry. */
export class ProposalLostError extends Error {
  override readonly name = 'ProposalLostError';
  constructor(reason: string) {
    super(`proposal lost: ${reason}; it was not applied and may be retried`);
  }
}

/** No answer in time: the entry may or may not be applied later. Check the state before retrying. */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
  constructor(what: string) {
    super(`${what} timed out; it may still take effect`);
  }
}

/** The host was stopped with the request in flight. */
export class HostStoppedError extends Error {
  override readonly name = 'HostStoppedError';
  constructor() {
    super('raft host stopped');
  }
}
