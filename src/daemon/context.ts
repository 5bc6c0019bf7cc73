/**
 * What the parts of one running daemon share: this node's id, options and addresses, its cluster
 * state and membership, the libp2p listener once it is up, and the roles it holds. A restart in
 * place (join, promotion) makes a new daemon with a new context.
 */
import type { Dispatcher } from '../manager/dispatcher/index.ts';
import type { NodeRole } from '../types/index.ts';
import type { Addrs } from './addrs.ts';
import { currentCluster } from './cluster.ts';
import type { ClusterNet } from './cluster-net.ts';
import type { AtRestKeys } from './keys-at-rest.ts';
import { formatHostPort, type Membership, saveMembership } from './membership.ts';
import type { DaemonOptions, Log } from './options.ts';
import type { ManagerRole } from './roles/manager.ts';
import { RoleMachine } from './roles/role-machine.ts';
import type { WorkerRole } from './roles/worker.ts';
import type { ClusterState } from './state.ts';

export class DaemonContext {
  /** The leader-only stages and the manager protocols; null on a worker (and after a demotion). */
  manager: ManagerRole | null = null;
  /** Every host in a cluster is a worker; null before it is in one. */
  worker: WorkerRole | null = null;
  /** The libp2p listener, once it is up (or from `--join` at start). */
  net: ClusterNet | null = null;
  /** Where this host is in its role changes (roles/role-machine.ts). */
  readonly roles: RoleMachine;
  /** This manager's raft data key and how its node key is kept (autolock); null on a worker. */
  atRest: AtRestKeys | null = null;
  /** Set when the daemon starts to stop: background work that has not begun does not. */
  stopping = false;

  constructor(
    readonly opts: DaemonOptions,
    readonly log: Log,
    readonly nodeId: string,
    readonly state: ClusterState,
    public membership: Membership | null,
    public addrs: Addrs,
  ) {
    this.roles = RoleMachine.fromRole(this.role);
  }

  get store() {
    return this.state.store;
  }

  /** The role cluster.json records, or a manager of the cluster in its own store (made here, identity not yet written). */
  get role(): NodeRole | null {
    return this.membership?.Role ?? (currentCluster(this.store) ? 'manager' : null);
  }

  /** This host's advertised IP:PORT. */
  get advertised(): string {
    return formatHostPort(this.addrs.advertise);
  }

  /** The dispatcher while this node leads. */
  get dispatcher(): Dispatcher | null {
    return this.manager?.dispatcher ?? null;
  }

  /** Managers the worker session last heard of from the dispatcher, leader first. */
  get sessionManagers(): string[] {
    return this.worker?.sessionManagers ?? [];
  }

  /** Managers' IP:PORT from the store, leader first (what the dispatcher hands to workers). */
  managerAddrs(): string[] {
    const ms = this.store.list('nodes').filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Addr);
    const leaderId = this.state.raft?.status.leader;
    ms.sort((a, b) => Number(b.ID === leaderId) - Number(a.ID === leaderId));
    return ms.map((n) => n.ManagerStatus!.Addr);
  }

  isRemoved(nodeId: string): boolean {
    return (currentCluster(this.store)?.RemovedNodes ?? []).includes(nodeId);
  }

  saveMembership(m: Membership): void {
    saveMembership(this.opts.dataDir, m);
  }
}
