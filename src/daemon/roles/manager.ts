/**
 * What a manager is, on top of being a worker: the cluster state on a raft log (opened before the
 * roles, state.ts), the leader-only stages while this node leads (leadership.ts), and, once the
 * cluster network is up, the cluster CA and the manager protocols on it (join, renewal, raft, the
 * dispatcher) plus a watch on the store for removed nodes and for its own demotion.
 */
import { errorMessage } from '../../lib/errors.ts';
import { followUnlockKey } from '../autolock.ts';
import type { AtRestKeys } from '../keys-at-rest.ts';
import type { Dispatcher } from '../../manager/dispatcher/index.ts';
import type { ClusterCA } from '../ca-service.ts';
import { currentCluster } from '../cluster.ts';
import type { ClusterNet } from '../cluster-net.ts';
import { LeaderRole } from '../leadership.ts';
import type { Stage } from '../manager-stages.ts';
import type { Membership } from '../membership.ts';
import type { Log } from '../options.ts';
import type { Service } from '../../lib/lifecycle.ts';
import type { ClusterState } from '../state.ts';

export interface ManagerRoleOptions {
  state: ClusterState;
  nodeId: string;
  /** Managers' IP:PORT, leader first (handed to workers). */
  managers: () => string[];
  /** The store says this node is a worker now (maybe a replay: confirm before acting). */
  onDemoted: () => void;
  log: Log;
  /** Its keys at rest, re-wrapped as the cluster's unlock key changes (autolock.ts). */
  atRest?: AtRestKeys | null;
  /** Further leader-only stages (leadership.ts). */
  leaderStages?: () => Stage[];
}

export class ManagerRole implements Service {
  readonly name = 'manager';
  readonly leader: LeaderRole;
  #ca: ClusterCA | null = null;
  #unwatch: (() => void) | null = null;
  #unfollowKey: (() => void) | null = null;

  constructor(private readonly o: ManagerRoleOptions) {
    this.leader = new LeaderRole({ store: o.state.store, raft: o.state.raft, selfId: o.nodeId, log: o.log, managers: o.managers, stages: o.leaderStages });
  }

  /** The dispatcher while this node leads, else null. */
  get dispatcher(): Dispatcher | null {
    return this.leader.manager?.dispatcher ?? null;
  }

  /** The cluster CA, once the network is up. */
  get ca(): ClusterCA | null {
    return this.#ca;
  }

  async start(): Promise<void> {
    if (this.o.atRest) this.#unfollowKey = followUnlockKey(this.o.state.store, this.o.nodeId, this.o.atRest, this.o.log);
    await this.leader.update();
  }

  /** The cluster network is up and this host has its certificate: serve what managers serve on it. */
  async serveOn(net: ClusterNet, membership: Membership): Promise<void> {
    const { store, raft, transport } = this.o.state;
    const [{ ClusterCA }, { issueMetricsServerCert }] = await Promise.all([import('../ca-service.ts'), import('../metrics-cert.ts')]);
    const ca = new ClusterCA(store, () => net.identity ?? null);
    this.#ca = ca;
    await net.serveManager({
      selfId: this.o.nodeId,
      transport,
      addrOf: (id) => store.get('nodes', id)?.ManagerStatus?.Addr || membership.Managers.find((m) => m.NodeID === id)?.Addr || null,
      admit: (req) => ca.admit(req),
      renew: (peer, key) => ca.renew(peer, key),
      issueServerCert: (peer, req) => issueMetricsServerCert(store, peer, req),
      dispatcher: () => this.dispatcher,
      leaderAddr: () => {
        const id = raft.status.leader;
        return id ? store.get('nodes', id)?.ManagerStatus?.Addr ?? null : null;
      },
      raftVoters: () => raft.status.conf.voters,
    });
    this.#watchMembership(net);
  }

  /**
   * Removed nodes lose their connections at once (their certificates stay valid, so the guard also
   * refuses them at every authentication and stream); a demotion of this host is reported.
   */
  #watchMembership(net: ClusterNet): void {
    const store = this.o.state.store;
    const revoked = new Set<string>();
    const check = () => {
      for (const id of currentCluster(store)?.RemovedNodes ?? []) {
        if (revoked.has(id)) continue;
        revoked.add(id);
        net.revoke(id);
      }
      if (store.get('nodes', this.o.nodeId)?.Spec.Role === 'worker') this.o.onDemoted();
    };
    this.#unwatch = store.watch((ev) => {
      if (ev.kind === 'commit') check();
    });
    check();
  }

  stopWatching(): void {
    this.#unwatch?.();
    this.#unwatch = null;
  }

  async stop(): Promise<void> {
    this.stopWatching();
    this.#unfollowKey?.();
    this.#unfollowKey = null;
    try {
      await this.leader.stop();
    } catch (e) {
      this.o.log(`${this.name} stop: ${errorMessage(e)}`);
    }
  }
}
