// A single RaftNode under test, with its host played by hand: messages in, Ready drained out.
import { decodeConfChange } from './confchange-codec.ts';
import { RaftNode } from './rawnode.ts';
import { MemoryStorage } from './storage.ts';
import type { Entry, Message, MessageType, NodeId, RaftConfig, ReadState, Ready } from './types.ts';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export interface NodeSetup {
  id?: NodeId;
  voters?: NodeId[];
  learners?: NodeId[];
  /** Terms of the entries already in the log, from index 1. */
  terms?: number[];
  term?: number;
  vote?: NodeId | null;
  commit?: number;
  cfg?: Partial<RaftConfig>;
}

export function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data: enc(data) };
}

export class Solo {
  readonly node: RaftNode;
  readonly storage: MemoryStorage;
  readonly id: NodeId;
  applied: Entry[] = [];
  readStates: ReadState[] = [];
  readies: Ready[] = [];

  constructor(s: NodeSetup = {}) {
    this.id = s.id ?? 'a';
    const terms = s.terms ?? [];
    this.storage = MemoryStorage.withConf({ voters: s.voters ?? ['a', 'b', 'c'], learners: s.learners ?? [] });
    this.storage.append(terms.map((t, i) => entry(i + 1, t)));
    const term = s.term ?? (terms.length > 0 ? terms[terms.length - 1] : 0);
    this.storage.setHardState({ term, vote: s.vote ?? null, commit: s.commit ?? 0 });
    this.node = new RaftNode({
      id: this.id,
      storage: this.storage,
      electionTicks: 10,
      heartbeatTicks: 1,
      rand: () => 0,
      preVote: false,
      checkQuorum: false,
      ...s.cfg,
    });
  }

  /** Persist, apply and advance every pending Ready; return the messages it produced. */
  out(): Message[] {
    const msgs: Message[] = [];
    while (this.node.hasReady()) {
      const rd = this.node.ready();
      this.readies.push(rd);
      if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
      this.storage.append(rd.entries);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
      msgs.push(...rd.messages);
      for (const e of rd.committed) {
        if (e.type === 'conf') this.storage.setConfState(this.node.applyConfChange(decodeConfChange(e.data)));
        this.applied.push(e);
      }
      this.readStates.push(...rd.readStates);
      this.node.advance(rd);
    }
    return msgs;
  }

  step(type: MessageType, from: NodeId, term: number, extra: Partial<Message> = {}): Message[] {
    this.node.step({ type, from, to: this.id, term, ...extra });
    return this.out();
  }

  tick(n = 1): Message[] {
    const msgs: Message[] = [];
    for (let i = 0; i < n; i++) {
      this.node.tick();
      msgs.push(...this.out());
    }
    return msgs;
  }

  /** Win an election by answering every vote request with a grant. Returns messages after winning. */
  makeLeader(): Message[] {
    this.node.campaign();
    let msgs = this.out();
    for (let round = 0; round < 2 && this.node.status().role !== 'leader'; round++) {
      const reqs = msgs.filter((m) => m.type === 'vote' || m.type === 'preVote');
      msgs = [];
      for (const q of reqs) {
        this.node.step({ type: q.type === 'vote' ? 'voteResp' : 'preVoteResp', from: q.to, to: this.id, term: q.term, reject: false });
        msgs.push(...this.out());
      }
    }
    if (this.node.status().role !== 'leader') throw new Error('makeLeader: did not win');
    return msgs;
  }

  /** The log as [index, term] pairs, read through storage (after out()). */
  logTerms(): number[] {
    const first = this.storage.firstIndex();
    const last = this.storage.lastIndex();
    return this.storage.entries(first, last + 1).map((e) => e.term);
  }

  get status() {
    return this.node.status();
  }
}

export function only(msgs: Message[], type: MessageType): Message[] {
  return msgs.filter((m) => m.type === type);
}
