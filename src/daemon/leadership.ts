/**
 * Leader-only work: the manager's stages (orchestrator, allocator, scheduler, reaper, dispatcher),
 * the raft membership keeper, the manager count keeper and the root rotation's finisher run on the raft leader only; they start when this node becomes
 * leader (after its store has applied everything committed) and stop when it loses leadership.
 * Changes are handled one at a time, in order.
 */
import { errorMessage } from '../lib/errors.ts';
import type { RaftHost } from '../raft-host/host.ts';
import type { MemoryStore } from '../store/index.ts';
import { currentCluster } from './cluster.ts';
import { Manager, type Stage } from './manager-stages.ts';
import { ManagerCount } from './manager-count.ts';
import { RaftMembers } from './raft-members.ts';

export interface LeaderRoleOptions {
  store: MemoryStore;
  raft: RaftHost;
  selfId: string;
  /** Manager addresses handed to workers (leader first). */
  managers: () => string[];
  log: (msg: string) => void;
  /** Told after the stages started or stopped. */
  onChange?: (leading: boolean) => void;
  /** Further leader-only stages, made afresh each time this node comes to lead (the upgrade driver). */
  stages?: () => Stage[];
}

export class LeaderRole {
  #manager: Manager | null = null;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly o: LeaderRoleOptions) {}

  /** The stages while this node leads, else null. */
  get manager(): Manager | null {
    return this.#manager;
  }

  /** Re-check the raft role (called on every role change, and after the cluster was made). */
  update(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#apply()).catch((err) => this.o.log(`leadership: ${errorMessage(err)}`));
    return this.#chain;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.update();
  }

  async #apply(): Promise<void> {
    const { store, raft } = this.o;
    const leading = () => !this.#stopped && raft.status.running && raft.status.role === 'leader' && !!currentCluster(store);
    if (leading() && !this.#manager) {
      await store.sync(); // everything committed before we lead is applied before any stage reads
      if (!leading()) return;
      const members = new RaftMembers({ store, raft, selfId: this.o.selfId, log: this.o.log });
      const count = new ManagerCount({ store, selfId: this.o.selfId, log: this.o.log, onError: (stage, err) => this.o.log(`${stage}: ${errorMessage(err)}`) });
      // Loaded here: x509 is not needed for a one-host daemon's API to come up.
      const { RotationFinisher } = await import('./ca-rotation.ts');
      const rotation = new RotationFinisher({ store, log: this.o.log, onError: (stage, err) => this.o.log(`${stage}: ${errorMessage(err)}`) });
      const m = new Manager(store, this.o.log, { managers: this.o.managers, stages: [members, count, rotation, ...(this.o.stages?.() ?? [])] });
      await m.start();
      this.#manager = m;
      this.o.log(`leadership: this node leads (term ${raft.status.term}); manager stages started`);
      this.o.onChange?.(true);
      if (!leading()) await this.#apply();
    } else if (!leading() && this.#manager) {
      const m = this.#manager;
      this.#manager = null;
      await m.stop();
      if (!this.#stopped) this.o.log(`leadership: this node no longer leads (leader: ${raft.status.leader ?? 'unknown'}); manager stages stopped`);
      this.o.onChange?.(false);
    }
  }
}
