/** Thrown by propose/proposeConfChange when the proposal cannot be accepted now; retry elsewhere or later. */
export class ProposalDroppedError extends Error {
  constructor(reason = 'proposal dropped') {
    super(reason);
    this.name = 'ProposalDroppedError';
  }
}

/** The requested index is below the storage's first index (compacted into a snapshot). */
export class CompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`raft log index ${index} is compacted (first index ${firstIndex})`);
    this.name = 'CompactedError';
  }
}

/** The requested index is above the storage's last index. */
export class UnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`raft log index ${index} is unavailable (last index ${lastIndex})`);
    this.name = 'UnavailableError';
  }
}

/** A snapshot older than the storage's current one was offered. */
export class SnapshotOutOfDateError extends Error {
  constructor(index: number, current: number) {
    super(`snapshot at index ${index} is older than the stored snapshot at ${current}`);
    this.name = 'SnapshotOutOfDateError';
  }
}
