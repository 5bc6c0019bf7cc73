// An in-process network of RaftNodes for tests: delivers messages synchronously, can drop, cut and
// isolate, and plays the host's part (persist to MemoryStorage, apply, advance).
import { decodeConfChange } from './confchange-codec.ts';
import { RaftNode } from './rawnode.ts';
import { MemoryStorage } from './storage.ts';
import type { ConfState, Entry, Message, MessageType, NodeId, RaftConfig, ReadState, Snapshot } from './types.ts';
import { seededRandom as seededRand } from '../lib/rng.ts';
export { seededRand };


export interface Member {
  id: NodeId;
  node: RaftNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  snapshots: Snapshot[];
  conf: ConfState;
}

export type NetOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export class Network {
  readonly members = new Map<NodeId, Member>();
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<NodeId>();
  private readonly down = new Set<NodeId>();
  /** Return true to drop a message. */
  filter: ((m: Message) => boolean) | undefined;
  /** When set, the next message is picked at random from the queue (reordering). */
  reorder: (() => number) | undefined;
  /** Return true to deliver a message twice. */
  duplicate: ((m: Message) => boolean) | undefined;
  /** Called after every delivered message (invariant checks). */
  afterStep: (() => void) | undefined;
  /** Record delivered messages in `log` (turn off for long runs). */
  keepLog = true;
  /** Every message delivered (or dropped), in order. */
  readonly log: { m: Message; dropped: boolean }[] = [];
  private queue: Message[] = [];
  private readonly opts: NetOptions;
  private seed: number;

  constructor(voters: NodeId[], opts: NetOptions = {}, learners: NodeId[] = []) {
    this.opts = opts;
    this.seed = 1;
    for (const id of [...voters, ...learners]) this.add(id, MemoryStorage.withConf({ voters, learners }));
  }

  /** Add a member with its own storage (e.g. a fresh learner: empty conf, it learns from the leader). */
  add(id: NodeId, storage: MemoryStorage, extra: NetOptions = {}): Member {
    const cfg: RaftConfig = {
      id,
      storage,
      electionTicks: 10,
      heartbeatTicks: 1,
      rand: seededRand(this.seed++ * 7919),
      ...this.opts,
      ...extra,
    };
    const m: Member = { id, node: new RaftNode(cfg), storage, applied: [], readStates: [], snapshots: [], conf: storage.initialState().conf };
    this.members.set(id, m);
    return m;
  }

  /** Restart a member from its storage, as after a crash (unpersisted state is lost). */
  restart(id: NodeId, extra: NetOptions = {}): Member {
    const old = this.get(id);
    const applied = old.applied.length > 0 ? old.applied[old.applied.length - 1].index : 0;
    const m = this.add(id, old.storage, { applied: Math.max(applied, old.storage.snapshot().meta.index), ...extra });
    m.applied = old.applied;
    return m;
  }

  get(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  ids(): NodeId[] {
    return [...this.members.keys()];
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Stop delivering to and from `id` and stop ticking it (a crashed or paused node). */
  stop(id: NodeId): void {
    this.down.add(id);
  }

  start(id: NodeId): void {
    this.down.delete(id);
  }

  heal(): void {
    this.cuts.clear();
    this.isolated.clear();
    this.filter = undefined;
  }

  private dropped(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return true;
    if (this.down.has(m.from) || this.down.has(m.to)) return true;
    if (this.cuts.has(`${m.from}>${m.to}`)) return true;
    if (!this.members.has(m.to)) return true;
    return this.filter?.(m) ?? false;
  }

  /** Play the host for one member: persist, collect messages, apply, advance. */
  private drain(id: NodeId): void {
    const mem = this.get(id);
    for (let guard = 0; mem.node.hasReady(); guard++) {
      if (guard > 1000) throw new Error(`member ${id}: hasReady never settles`);
      const rd = mem.node.ready();
      if (rd.snapshot) {
        mem.storage.applySnapshot(rd.snapshot);
        mem.snapshots.push(rd.snapshot);
        mem.conf = rd.snapshot.meta.conf;
      }
      mem.storage.append(rd.entries);
      if (rd.hardState) mem.storage.setHardState(rd.hardState);
      this.queue.push(...rd.messages);
      for (const e of rd.committed) {
        if (e.type === 'conf') {
          mem.conf = mem.node.applyConfChange(decodeConfChange(e.data));
          mem.storage.setConfState(mem.conf);
        }
        mem.applied.push(e);
      }
      mem.readStates.push(...rd.readStates);
      mem.node.advance(rd);
    }
  }

  /** Deliver queued messages (and those they cause) until the network is quiet. */
  deliver(maxMessages = 100_000): void {
    for (const id of this.ids()) if (!this.down.has(id)) this.drain(id);
    let n = 0;
    while (this.queue.length > 0) {
      if (++n > maxMessages) throw new Error('network: message storm');
      const at = this.reorder ? Math.floor(this.reorder() * this.queue.length) : 0;
      const m = this.queue.splice(at, 1)[0];
      const dropped = this.dropped(m);
      if (this.keepLog) this.log.push({ m, dropped });
      if (dropped) continue;
      if (this.duplicate?.(m)) this.queue.push(m);
      this.get(m.to).node.step(m);
      this.drain(m.to);
      this.afterStep?.();
    }
  }

  /** Inject messages (e.g. hand-crafted) and deliver. */
  send(...msgs: Message[]): void {
    this.queue.push(...msgs);
    this.deliver();
  }

  /** Tick every running member once, delivering after each, `n` times. */
  tick(n = 1, only?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const id of only ?? this.ids()) {
        if (this.down.has(id)) continue;
        this.get(id).node.tick();
        this.drain(id);
      }
      this.deliver();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.deliver();
  }

  propose(id: NodeId, data: string): void {
    this.get(id).node.propose(enc(data));
    this.deliver();
  }

  leader(): NodeId | null {
    const leaders = this.ids().filter((id) => !this.down.has(id) && this.get(id).node.status().role === 'leader');
    const top = leaders.map((id) => this.get(id).node.status()).sort((a, b) => b.term - a.term)[0];
    return top ? top.id : null;
  }

  /** Tick until some node leads (bounded). */
  electLeader(maxTicks = 200): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      const l = this.leader();
      if (l !== null) return l;
      this.tick();
    }
    throw new Error('no leader elected');
  }

  /** Data of applied normal entries (skips the leaders' empty entries). */
  appliedData(id: NodeId): string[] {
    return this.get(id).applied.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => dec(e.data));
  }

  count(type: MessageType, since = 0): number {
    return this.log.slice(since).filter((x) => x.m.type === type && !x.dropped).length;
  }
}

/** Raft's safety properties, checked across all members: throws naming the seed on a violation. */
export function checkSafety(net: Network, leaders: Map<number, NodeId>, seed: number): void {
  for (const id of net.ids()) {
    const st = net.get(id).node.status();
    if (st.role !== 'leader') continue;
    const seen = leaders.get(st.term);
    if (seen !== undefined && seen !== id) throw new Error(`seed ${seed}: two leaders in term ${st.term}: ${seen} and ${id}`);
    leaders.set(st.term, id);
  }
  // State machine safety: no two nodes apply different entries at the same index.
  const byIndex = new Map<number, Entry>();
  for (const id of net.ids()) {
    for (const e of net.get(id).applied) {
      const other = byIndex.get(e.index);
      if (!other) byIndex.set(e.index, e);
      else if (other.term !== e.term || dec(other.data) !== dec(e.data)) {
        throw new Error(`seed ${seed}: index ${e.index} applied as ${other.term}/${dec(other.data)} and ${e.term}/${dec(e.data)} (${id})`);
      }
    }
  }
}

