import { randomBytes } from 'node:crypto';
import { newId } from '../lib/ids.ts';
import { ConflictError } from '../lib/errors.ts';
import { newUnlockKey } from '../lib/unlock-key.ts';
// From host-options.ts, not host.ts: every host evaluates this module, and a worker has no raft host.
import { DEFAULT_ELECTION_TICKS, DEFAULT_HEARTBEAT_TICKS } from '../raft-host/host-options.ts';
import type { MemoryStore } from '../store/index.ts';
import { type Cluster, type ClusterSpec, DEFAULT_TASK_HISTORY, type Node, type NodeDescription, NS_PER_S } from '../types/index.ts';

export function defaultClusterSpec(): ClusterSpec {
  return {
    Name: 'default',
    Labels: {},
    Orchestration: { TaskHistoryRetentionLimit: DEFAULT_TASK_HISTORY },
    Raft: { SnapshotInterval: 10_000, ElectionTick: DEFAULT_ELECTION_TICKS, HeartbeatTick: DEFAULT_HEARTBEAT_TICKS },
    Dispatcher: { HeartbeatPeriod: 1 * NS_PER_S },
    CAConfig: { NodeCertExpiry: 90 * 24 * 3600 * NS_PER_S },
  };
}

/** The cluster object, if this store holds one. */
export function currentCluster(store: MemoryStore): Cluster | undefined {
  return store.list('clusters')[0];
}

/**
 * Create the cluster with this host as its first node (a manager that is also a worker).
 * Refuses when a cluster already exists.
 */
export interface ClusterIdentity {
  ID: string;
  RootCA: NonNullable<Cluster['RootCA']>;
  JoinTokens: Cluster['JoinTokens'];
}

/**
 * `addr` is this node's advertised IP:PORT for other nodes; `identity` the cluster id, root CA and
 * join tokens the daemon made (tests without a CA get placeholders).
 */
export async function initCluster(store: MemoryStore, nodeId: string, description: NodeDescription, spec?: Partial<ClusterSpec>, addr = '', identity?: ClusterIdentity): Promise<Cluster> {
  if (currentCluster(store)) throw new ConflictError('this node is already part of a cluster; "shoal cluster leave" first to make a new one');
  const defaults = defaultClusterSpec();
  const token = (role: string) => `SHOAL-1-pending-${role}-${randomBytes(12).toString('hex')}`;
  const cluster: Cluster = {
    ID: identity?.ID ?? newId(),
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { ...defaults, ...spec, Raft: { ...defaults.Raft, ...spec?.Raft }, CAConfig: { ...defaults.CAConfig, ...spec?.CAConfig } },
    JoinTokens: identity?.JoinTokens ?? { Worker: token('worker'), Manager: token('manager') },
    ...(identity ? { RootCA: identity.RootCA } : {}),
    // `swarm init --autolock`: the key this manager seals its keys under from the start.
    ...(spec?.EncryptionConfig?.AutoLockManagers ? { UnlockKey: newUnlockKey() } : {}),
  };
  const node = leadingManagerNode(nodeId, description, addr);
  await store.update((tx) => {
    tx.create('clusters', cluster);
    tx.create('nodes', node);
  });
  return currentCluster(store)!;
}

/** The node object of a cluster's only manager, as it leads (init; a restore from a backup). */
export function leadingManagerNode(nodeId: string, description: NodeDescription, addr: string): Node {
  const ip = addr ? addr.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1') : '127.0.0.1';
  return {
    ID: nodeId,
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Role: 'manager', Availability: 'active', Labels: {} },
    Description: description,
    Status: { State: 'unknown', Addr: ip },
    ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: addr || '127.0.0.1' },
    ...(addr ? { AdvertiseAddr: addr } : {}),
  };
}
