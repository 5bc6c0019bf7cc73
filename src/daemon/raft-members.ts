/**
 * Keeps the raft configuration in line with the node list, on the leader only (swarmkit's role
 * manager): a node whose Spec.Role is manager and that raft does not know is added as a learner; a
 * learner that has caught up is promoted to voter; a member whose node is gone or now a worker is
 * removed, and when that member is this leader it hands leadership over first. It also writes each
 * manager's ManagerStatus (Leader, Reachability) as this leader sees it. One change at a time, all
 * through the store and the raft host; a pass that fails is retried on the next one.
 */
import { errorMessage } from '../lib/errors.ts';
import type { RaftHost } from '../raft-host/host.ts';
import type { MemoryStore } from '../store/index.ts';
import type { ManagerStatus, Node } from '../types/index.ts';
import { currentCluster } from './cluster.ts';

/** A member not heard from for this long is shown as unreachable. */
const UNREACHABLE_AFTER_MS = 3_000;

export interface RaftMembersOptions {
  store: MemoryStore;
  raft: RaftHost;
  selfId: string;
  /** Between passes; a node change also triggers one. */
  intervalMs?: number;
  log: (msg: string) => void;
}

export class RaftMembers {
  #timer: ReturnType<typeof setInterval> | null = null;
  #unwatch: (() => void) | null = null;
  #busy = false;
  #again = false;
  /** When each member last showed as recently active (raft resets that flag every election timeout). */
  readonly #lastActive = new Map<string, number>();

  constructor(private readonly o: RaftMembersOptions) {}

  start(): void {
    this.#timer = setInterval(() => this.kick(), this.o.intervalMs ?? 500);
    this.#unwatch = this.o.store.watch((ev) => {
      if (ev.kind !== 'commit' && ev.table === 'nodes') this.kick();
    });
    this.kick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unwatch?.();
    this.#unwatch = null;
  }

  kick(): void {
    if (!this.#timer) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    void this.#pass()
      .catch((err) => this.o.log(`raft membership: ${errorMessage(err)}`))
      .finally(() => {
        this.#busy = false;
        if (this.#again) {
          this.#again = false;
          queueMicrotask(() => this.kick());
        }
      });
  }

  async #pass(): Promise<void> {
    const { store, raft, selfId } = this.o;
    const st = raft.status;
    if (st.role !== 'leader' || !currentCluster(store)) return;
    const removed = new Set(currentCluster(store)!.RemovedNodes ?? []);
    const nodes = new Map(store.list('nodes').map((n) => [n.ID, n]));
    const isManager = (id: string) => nodes.get(id)?.Spec.Role === 'manager' && !removed.has(id);
    const members = new Set([...st.conf.voters, ...st.conf.learners]);

    for (const id of [...st.conf.voters, ...st.conf.learners]) {
      if (isManager(id)) continue;
      if (id === selfId) {
        this.o.log(`raft membership: this leader (${id}) is no longer a manager; handing leadership over`);
        await raft.transferLeadership();
        return;
      }
      this.o.log(`raft membership: removing ${id} (its node is ${nodes.has(id) ? 'a worker now' : 'gone'})`);
      await raft.remove(id);
      return;
    }
    for (const n of nodes.values()) {
      if (!isManager(n.ID) || members.has(n.ID)) continue;
      this.o.log(`raft membership: adding ${n.ID} (${n.ManagerStatus?.Addr ?? 'no address'}) as a learner`);
      await raft.addLearner(n.ID);
      return;
    }
    for (const id of st.conf.learners) {
      const p = st.progress[id];
      if (!p || p.match < st.commit) continue;
      this.o.log(`raft membership: promoting learner ${id} to voter (caught up at ${p.match})`);
      await raft.promote(id);
      return;
    }
    await this.#writeStatus(nodes, st.progress, new Set(st.conf.voters));
  }

  /** A manager that is not a voter yet (a learner catching up, or not added) shows as `unknown`. */
  async #writeStatus(nodes: Map<string, Node>, progress: Record<string, { recentActive: boolean }>, voters: Set<string>): Promise<void> {
    const { store, selfId } = this.o;
    const now = Date.now();
    for (const [id, p] of Object.entries(progress)) if (p.recentActive || !this.#lastActive.has(id)) this.#lastActive.set(id, now);
    const want = (n: Node): ManagerStatus | undefined => {
      if (n.Spec.Role !== 'manager') return n.ManagerStatus;
      const seen = this.#lastActive.get(n.ID);
      const active = n.ID === selfId || (seen !== undefined && progress[n.ID]?.recentActive !== undefined && now - seen < UNREACHABLE_AFTER_MS);
      const reachability = !voters.has(n.ID) ? 'unknown' : active ? 'reachable' : 'unreachable';
      return { Leader: n.ID === selfId, Reachability: reachability, Addr: n.ManagerStatus?.Addr ?? '' };
    };
    const changed = [...nodes.values()].filter((n) => {
      const w = want(n);
      const cur = n.ManagerStatus;
      return w && (!cur || cur.Leader !== w.Leader || cur.Reachability !== w.Reachability);
    });
    if (!changed.length) return;
    await store.update((tx) => {
      for (const c of changed) {
        const n = tx.get('nodes', c.ID);
        if (n) tx.update('nodes', { ...n, ManagerStatus: want(n) });
      }
    });
  }
}
