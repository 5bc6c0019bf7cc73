/**
 * Keeps the cluster's desired number of managers, on the leader only. It reads the node list and
 * `Cluster.Spec.Managers` and changes only node roles, through the store — the same write as
 * `node promote` / `node demote`; `RaftMembers` and the nodes themselves do the rest (a promoted
 * worker learns its role from its heartbeat acks and restarts as a manager; a demoted manager is
 * dropped from raft).
 *
 *  - Desired count: `Spec.Managers.Desired`, or when absent/0 min(3, nodes); always rounded down
 *    to an odd number, at most 7 and at most the number of nodes.
 *  - A manager is lost when it is down (no dispatcher session) or unreachable (raft) for longer
 *    than `Spec.Managers.LostGracePeriod` (default 30 s), as this leader has seen it; a new leader
 *    starts counting afresh.
 *  - Fewer managers than desired, not counting the lost: promote one ready, active worker, one that
 *    shares no failure domain (node label `Spec.Managers.FailureDomainLabel`, default
 *    `failure-domain`) with the managers first.
 *  - More managers than desired: demote one, lost ones first, then one a worker was promoted to
 *    replace (even if it is back: the managers that stayed up are not churned); never this leader, and never one
 *    whose removal would leave the reachable voters without a majority. In the automatic mode only
 *    lost managers are demoted (managers joined with the manager token are kept).
 *  - `Desired` < 0: off. A `node promote|demote` by hand in the automatic mode sets it (the user
 *    takes over; src/api/nodes.ts).
 *  - Nothing is done without a reachable majority of voters, nor while a manager is still joining
 *    (`ManagerStatus.Reachability` unknown): one change at a time.
 */
import { NS_PER_MS, type ManagersSpec, type Node } from '../types/index.ts';
import { type ObjectEvent, ReconcileStage, type StageOptions, type Timer } from '../manager/stage.ts';
import { currentCluster } from './cluster.ts';

export const MAX_MANAGERS = 7;
export const AUTO_MANAGERS = 3;
export const DEFAULT_LOST_GRACE_MS = 30_000;
export const DEFAULT_FAILURE_DOMAIN_LABEL = 'failure-domain';

/** The number of managers to keep with `nodes` nodes in the cluster. */
export function desiredManagers(spec: ManagersSpec | undefined, nodes: number): number {
  const asked = spec?.Desired && spec.Desired > 0 ? Math.floor(spec.Desired) : AUTO_MANAGERS;
  let n = Math.min(asked, MAX_MANAGERS, nodes);
  if (n % 2 === 0) n -= 1;
  return Math.max(1, n);
}

export function lostGraceMs(spec: ManagersSpec | undefined): number {
  const ns = spec?.LostGracePeriod;
  return typeof ns === 'number' && Number.isFinite(ns) && ns >= 0 ? ns / NS_PER_MS : DEFAULT_LOST_GRACE_MS;
}

export interface ManagerCountOptions extends StageOptions {
  /** This node, the raft leader: never demoted here. */
  selfId: string;
  log: (msg: string) => void;
}

export class ManagerCount extends ReconcileStage {
  readonly name = 'managers';
  readonly #selfId: string;
  readonly #log: (msg: string) => void;
  /** When this leader first saw each manager down or unreachable. */
  readonly #lostSince = new Map<string, number>();
  /** Managers a worker was promoted to replace (they were lost then), even if back since. */
  readonly #replaced = new Set<string>();
  #timer: Timer | null = null;
  #lastSaid = '';

  constructor(o: ManagerCountOptions) {
    super(o);
    this.#selfId = o.selfId;
    this.#log = o.log;
  }

  protected interested(ev: ObjectEvent): boolean {
    return ev.table === 'nodes' || ev.table === 'clusters';
  }

  /** Logs a message once until another one is said (passes repeat on every node change). */
  #say(msg: string): void {
    if (msg === this.#lastSaid) return;
    this.#lastSaid = msg;
    this.#log(`managers: ${msg}`);
  }

  protected async reconcile(): Promise<void> {
    const cluster = currentCluster(this.store);
    if (!cluster) return;
    const spec = cluster.Spec.Managers;
    const removed = new Set(cluster.RemovedNodes ?? []);
    const nodes = this.store.list('nodes').filter((n) => !removed.has(n.ID));
    const managers = nodes.filter((n) => n.Spec.Role === 'manager');
    const now = this.clock.now();
    const grace = lostGraceMs(spec);

    // How long each manager has been gone, and a pass when the next one's grace runs out.
    // (A manager still joining counts too: one that never becomes a voter is replaced in the end.)
    const missing = (n: Node) => n.ID !== this.#selfId && (n.Status.State === 'down' || n.ManagerStatus?.Reachability !== 'reachable');
    const ids = new Set(managers.map((m) => m.ID));
    for (const id of this.#lostSince.keys()) if (!ids.has(id)) this.#lostSince.delete(id);
    for (const id of this.#replaced) if (!ids.has(id)) this.#replaced.delete(id);
    let nextDue = Infinity;
    for (const m of managers) {
      if (!missing(m)) {
        this.#lostSince.delete(m.ID);
        continue;
      }
      if (!this.#lostSince.has(m.ID)) this.#lostSince.set(m.ID, now);
      const due = this.#lostSince.get(m.ID)! + grace;
      if (due > now) nextDue = Math.min(nextDue, due);
    }
    this.#timer?.cancel();
    this.#timer = nextDue < Infinity ? this.later(nextDue - now, () => this.kick()) : null;

    // Act only with a reachable majority of voters, and one change at a time.
    const reachable = (n: Node) => n.ID === this.#selfId || n.ManagerStatus?.Reachability === 'reachable';
    const voters = managers.filter((n) => reachable(n) || n.ManagerStatus?.Reachability === 'unreachable');
    const up = voters.filter(reachable).length;
    if (up * 2 <= voters.length) return this.#say(`no change: only ${up} of ${voters.length} voting managers are reachable`);
    const lost = (n: Node) => this.#lostSince.has(n.ID) && now - this.#lostSince.get(n.ID)! >= grace;
    if (managers.some((n) => !reachable(n) && n.ManagerStatus?.Reachability !== 'unreachable' && !lost(n))) return; // one still joining

    if ((spec?.Desired ?? 0) < 0) return this.#say('off (Spec.Managers.Desired < 0: roles are changed by hand)');
    const desired = desiredManagers(spec, nodes.length);
    const auto = !(spec?.Desired && spec.Desired > 0);
    const kept = managers.filter((n) => !lost(n));
    if (kept.length < desired) {
      const label = spec?.FailureDomainLabel || DEFAULT_FAILURE_DOMAIN_LABEL;
      const domain = (n: Node) => n.Spec.Labels?.[label] ?? '';
      const taken = new Set(kept.map(domain));
      const candidates = nodes
        .filter((n) => n.Spec.Role === 'worker' && n.Status.State === 'ready' && n.Spec.Availability === 'active' && !!n.AdvertiseAddr)
        .sort((a, b) => Number(taken.has(domain(a))) - Number(taken.has(domain(b))) || hostname(a).localeCompare(hostname(b)) || a.ID.localeCompare(b.ID));
      const pick = candidates[0];
      if (!pick) return this.#say(`${kept.length} of ${desired} desired managers and no ready, active worker to promote`);
      this.#say(`${kept.length} of ${desired} desired managers${managers.length > kept.length ? ` (${managers.length - kept.length} lost)` : ''}: promoting ${pick.ID} (${hostname(pick)}${domain(pick) ? `, ${label}=${domain(pick)}` : ''})`);
      for (const m of managers) if (lost(m)) this.#replaced.add(m.ID);
      await this.#setRole(pick, 'manager');
      return;
    }
    if (managers.length > desired) {
      // A manager that was replaced goes before one that never left, even when it is back by now:
      // the replacement stays, and the managers that stayed up are not churned.
      const order = (n: Node) => (lost(n) ? 0 : missing(n) ? 1 : this.#replaced.has(n.ID) ? 2 : 3);
      const candidates = managers
        .filter((n) => n.ID !== this.#selfId && (!auto || lost(n)))
        // After the demotion, the reachable voters left must still be a majority of the voters left.
        .filter((n) => {
          const isVoter = voters.includes(n);
          const upLeft = up - (isVoter && reachable(n) ? 1 : 0);
          return upLeft * 2 > voters.length - (isVoter ? 1 : 0);
        })
        .sort((a, b) => order(a) - order(b) || (this.#lostSince.get(a.ID) ?? 0) - (this.#lostSince.get(b.ID) ?? 0) || hostname(b).localeCompare(hostname(a)) || a.ID.localeCompare(b.ID));
      const pick = candidates[0];
      if (!pick) return this.#say(`${managers.length} managers for ${desired} desired, but none can be demoted safely now`);
      this.#say(`${managers.length} managers for ${desired} desired: demoting ${pick.ID} (${hostname(pick)}${lost(pick) ? ', lost' : ''})`);
      await this.#setRole(pick, 'worker');
      return;
    }
    this.#say(`${managers.length} managers, as desired`);
  }

  /** The write `node promote` / `node demote` makes (src/api/nodes.ts), if the node is as read. */
  async #setRole(read: Node, role: 'manager' | 'worker'): Promise<void> {
    await this.store.update((tx) => {
      const cur = tx.get('nodes', read.ID);
      if (!cur || cur.Spec.Role !== read.Spec.Role) return;
      const ManagerStatus = role === 'manager' ? { Leader: false, Reachability: 'unknown' as const, Addr: cur.AdvertiseAddr ?? '' } : cur.ManagerStatus;
      tx.update('nodes', { ...cur, Spec: { ...cur.Spec, Role: role }, ...(ManagerStatus ? { ManagerStatus } : {}) });
    });
  }
}

const hostname = (n: Node) => n.Spec.Name || n.Description?.Hostname || n.ID;
