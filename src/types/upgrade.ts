/**
 * A rolling upgrade (or rollback) of the fleet's executable, kept in the Cluster object so that it is
 * replicated: the leader drives it, and a new leader (the old one restarting on the new executable)
 * carries on from here. Our addition; Docker has no such record.
 */
export type UpgradeKind = 'upgrade' | 'rollback';

/**
 * Where the whole upgrade stands. `staging`: the executable goes to every manager first (nothing is
 * replaced yet); `running`: the leader restarts node after node; `paused`: a node failed, and
 * `shoal fleet upgrade --rollback` or a new upgrade goes on from there.
 */
export type UpgradePhase = 'staging' | 'running' | 'paused' | 'done';

/** One node's step, in order: pending → staged → probed → restarting → ready (or failed, with a reason). */
export type UpgradeNodeState = 'pending' | 'staged' | 'probed' | 'restarting' | 'ready' | 'skipped' | 'failed';

export interface UpgradeNode {
  NodeID: string;
  Hostname: string;
  Role: 'manager' | 'worker';
  /** The version it ran when the upgrade began. */
  From: string;
  State: UpgradeNodeState;
  Message?: string;
  UpdatedAt: string;
}

export interface UpgradeRecord {
  ID: string;
  Kind: UpgradeKind;
  /** The version every node runs at the end. */
  Version: string;
  /** SHA-256 (hex) of the executable every node runs at the end (empty for a rollback: each node's own previous one). */
  Sha256: string;
  Size: number;
  Phase: UpgradePhase;
  /** Why it paused. */
  Message?: string;
  /** How many workers restart at once (managers always one at a time). */
  Parallelism: number;
  /** Workers first, then managers (the leader last). */
  Nodes: UpgradeNode[];
  StartedAt: string;
  UpdatedAt: string;
}
