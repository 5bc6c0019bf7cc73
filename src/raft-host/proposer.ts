// The contract between the store and the replicated log lives with the store (src/store/proposer.ts);
// the raft host implements Proposer and drives a StateMachine. Here: the errors its requests reject with,
// all 503 at the API (the cluster cannot take the request now).
import { UnavailableError } from '../lib/errors.ts';
import type { NodeId } from '../raft/index.ts';

export { type Proposer, type StateMachine, UnreadableEntryError } from '../store/proposer.ts';

/** This node is not the leader; send the request to `leader` (null when unknown: retry later). */
export class NotLeaderError extends UnavailableError {
  override readonly name = 'NotLeaderError';
  constructor(readonly leader: NodeId | null) {
    super(
      leader
        ? `not the raft leader; the leader is ${leader}`
        : 'no raft leader is known yet: retry shortly. If this lasts, a majority of the managers is unreachable (the cluster has lost its quorum; ' +
          'writes are refused until they are back, tasks keep running meanwhile). Bring the lost managers back, or, if they are gone for good, ' +
          'restart one surviving manager with "shoal daemon --force-new-cluster" to make it a one-manager cluster with all the state it holds',
    );
  }
}

/** The entry will never be applied (overwritten after a leader change or dropped by the core): safe to retry. */
export class ProposalLostError extends UnavailableError {
  override readonly name = 'ProposalLostError';
  constructor(reason: string) {
    super(`proposal lost: ${reason}; it was not applied and may be retried`);
  }
}

/** No answer in time: the entry may or may not be applied later. Check the state before retrying. */
export class OutcomeUnknownError extends UnavailableError {
  override readonly name = 'OutcomeUnknownError';
  constructor(what: string, why = 'timed out') {
    super(`${what} ${why}; it may still take effect`);
  }
}

/** The host was stopped with the request in flight. */
export class HostStoppedError extends UnavailableError {
  override readonly name = 'HostStoppedError';
  constructor() {
    super('raft host stopped');
  }
}
