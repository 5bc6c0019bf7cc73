// One test per rule of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
// Consensus Algorithm", Figure 2 and §5–§8), named after the sentence it checks.
import { describe, expect, test } from 'bun:test';
import { ProposalDroppedError } from './errors.ts';
import { encodeConfChange } from './confchange-codec.ts';
import { Network } from './network.test-helper.ts';
import { enc, entry, only, Solo } from './node.test-helper.ts';

describe('§5.1 Raft basics', () => {
  test('§5.1 If a server receives a request with a stale term number, it rejects the request', () => {
    const f = new Solo({ terms: [1, 2, 3], term: 3, cfg: { preVote: true } });
    const msgs = f.step('append', 'b', 2, { index: 3, logTerm: 3, entries: [entry(4, 2)], commit: 0 });
    expect(f.logTerms()).toEqual([1, 2, 3]);
    expect(f.status.term).toBe(3);
    // The reply carries our newer term so the stale leader learns it was deposed.
    expect(msgs.map((m) => [m.type, m.term])).toEqual([['appendResp', 3]]);
  });

  test('Figure 2 All Servers: If RPC request or response contains term T > currentTerm: set currentTerm = T, convert to follower', () => {
    for (const role of ['follower', 'candidate', 'leader'] as const) {
      const s = new Solo({ terms: [1], term: 1 });
      if (role === 'candidate') s.node.campaign();
      if (role === 'leader') s.makeLeader();
      s.out();
      expect(s.status.role).toBe(role);
      s.step('append', 'c', 9, { index: 1, logTerm: 1, entries: [], commit: 0 });
      expect(s.status.term).toBe(9);
      expect(s.status.role).toBe('follower');
      expect(s.status.leader).toBe('c');
    }
  });

  test('§5.1 Current terms are exchanged whenever servers communicate; a leader that discovers its term is out of date reverts to follower', () => {
    const l = new Solo();
    l.makeLeader();
    l.step('appendResp', 'b', 5, { index: 0 });
    expect(l.status.role).toBe('follower');
    expect(l.status.term).toBe(5);
    expect(l.status.leader).toBeNull();
  });

  test('Figure 2 All Servers: currentTerm and votedFor are persisted before responding (hard state in the Ready with the response)', () => {
    const f = new Solo();
    f.node.step({ type: 'vote', from: 'b', to: 'a', term: 4, index: 0, logTerm: 0 });
    const rd = f.node.ready();
    expect(rd.hardState).toEqual({ term: 4, vote: 'b', commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.map((m) => m.type)).toEqual(['voteResp']);
  });
});

describe('§5.2 Leader election', () => {
  test('Figure 2 RequestVote: Reply false if term < currentTerm', () => {
    const f = new Solo({ terms: [1], term: 3, cfg: { preVote: true } });
    const pre = f.step('preVote', 'b', 2, { index: 5, logTerm: 1 });
    expect(pre.map((m) => [m.type, m.reject, m.term])).toEqual([['preVoteResp', true, 3]]);
    const vote = f.step('vote', 'b', 2, { index: 5, logTerm: 1 });
    expect(only(vote, 'voteResp').some((m) => !m.reject)).toBe(false);
    expect(f.status.vote).toBeNull();
  });

  test("Figure 2 RequestVote: If votedFor is null or candidateId, and candidate's log is at least as up-to-date as receiver's log, grant vote", () => {
    const f = new Solo({ terms: [1, 1], term: 1 });
    const first = f.step('vote', 'b', 2, { index: 2, logTerm: 1 });
    expect(first.map((m) => [m.type, m.to, m.reject])).toEqual([['voteResp', 'b', false]]);
    expect(f.status.vote).toBe('b');
    // A retransmitted request from the same candidate is granted again.
    const again = f.step('vote', 'b', 2, { index: 2, logTerm: 1 });
    expect(again.map((m) => m.reject)).toEqual([false]);
  });

  test('§5.2 Each server will vote for at most one candidate in a given term, on a first-come-first-served basis', () => {
    const f = new Solo({ voters: ['a', 'b', 'c', 'd', 'e'] });
    expect(f.step('vote', 'b', 1, { index: 0, logTerm: 0 })[0].reject).toBe(false);
    expect(f.step('vote', 'c', 1, { index: 0, logTerm: 0 })[0].reject).toBe(true);
    expect(f.status.vote).toBe('b');
  });

  test('§5.2 To begin an election, a follower increments its current term and transitions to candidate state; it votes for itself and issues RequestVote RPCs in parallel', () => {
    const f = new Solo({ terms: [1, 1], term: 1 });
    const msgs = f.tick(10);
    expect(f.status.role).toBe('candidate');
    expect(f.status.term).toBe(2);
    expect(f.status.vote).toBe('a');
    expect(msgs.map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
      ['vote', 'b', 2, 2, 1],
      ['vote', 'c', 2, 2, 1],
    ]);
  });

  test('§5.2 If a follower receives no communication over a period of time called the election timeout, it begins an election', () => {
    const f = new Solo();
    f.step('heartbeat', 'b', 1, { commit: 0 });
    f.tick(9);
    f.step('heartbeat', 'b', 1, { commit: 0 });
    expect(f.tick(9)).toEqual([]);
    expect(f.status.role).toBe('follower');
    f.tick(1);
    expect(f.status.role).toBe('candidate');
  });

  test('§5.2 A candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term', () => {
    for (const [voters, needed] of [[['a', 'b', 'c'], 1], [['a', 'b', 'c', 'd', 'e'], 2]] as const) {
      const c = new Solo({ voters: [...voters] });
      c.node.campaign();
      c.out();
      const others = voters.filter((v) => v !== 'a');
      for (let i = 0; i < needed; i++) {
        expect(c.status.role).toBe('candidate');
        c.step('voteResp', others[i], 1, { reject: false });
      }
      expect(c.status.role).toBe('leader');
    }
  });

  test('§5.2 A candidate that receives a majority of rejections returns to follower', () => {
    const c = new Solo();
    c.node.campaign();
    c.out();
    c.step('voteResp', 'b', 1, { reject: true });
    expect(c.status.role).toBe('candidate');
    c.step('voteResp', 'c', 1, { reject: true });
    expect(c.status.role).toBe('follower');
  });

  test('§5.2 Once a candidate wins an election, it becomes leader and sends heartbeat messages to all of the other servers to establish its authority', () => {
    const c = new Solo();
    const msgs = c.makeLeader();
    expect(msgs.map((m) => [m.type, m.to])).toEqual([
      ['append', 'b'],
      ['append', 'c'],
    ]);
  });

  test('§5.2 If the leader\'s term is at least as large as the candidate\'s current term, the candidate recognizes the leader as legitimate and returns to follower state', () => {
    const c = new Solo();
    c.node.campaign();
    c.out();
    c.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [], commit: 0 });
    expect(c.status.role).toBe('follower');
    expect(c.status.leader).toBe('b');
    expect(c.status.term).toBe(1);
  });

  test('§5.2 If many followers become candidates at the same time, each candidate will time out and start a new election by incrementing its term', () => {
    const c = new Solo();
    c.node.campaign();
    c.out();
    expect(c.status.term).toBe(1);
    const msgs = c.tick(10);
    expect(c.status.role).toBe('candidate');
    expect(c.status.term).toBe(2);
    expect(only(msgs, 'vote').map((m) => m.term)).toEqual([2, 2]);
  });

  test('§5.2 Raft uses randomized election timeouts: chosen from a fixed interval, here [electionTicks, 2*electionTicks)', () => {
    for (const [r, expected] of [[0, 10], [0.55, 15], [0.999, 19]] as const) {
      const f = new Solo({ cfg: { rand: () => r } });
      let ticks = 0;
      while (f.status.role === 'follower' && ticks < 100) {
        f.tick();
        ticks++;
      }
      expect(ticks).toBe(expected);
    }
  });

  test('§5.2 Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all followers in order to maintain their authority', () => {
    const l = new Solo({ cfg: { heartbeatTicks: 3 } });
    l.makeLeader();
    expect(l.tick(2)).toEqual([]);
    const msgs = l.tick(1);
    expect(msgs.map((m) => [m.type, m.to])).toEqual([
      ['heartbeat', 'b'],
      ['heartbeat', 'c'],
    ]);
  });
});

describe('§5.3 Log replication', () => {
  function leaderWithAckedNoop(): Solo {
    const l = new Solo();
    l.makeLeader();
    l.step('appendResp', 'b', 1, { index: 1 });
    l.step('appendResp', 'c', 1, { index: 1 });
    return l;
  }

  test('§5.3 The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in parallel to each of the other servers', () => {
    const l = leaderWithAckedNoop();
    l.node.propose(enc('x'));
    const msgs = l.out();
    expect(l.logTerms()).toEqual([1, 1]);
    expect(msgs.map((m) => [m.type, m.to, m.index, m.logTerm, m.entries?.map((e) => e.index)])).toEqual([
      ['append', 'b', 1, 1, [2]],
      ['append', 'c', 1, 1, [2]],
    ]);
  });

  test('§5.3 A log entry is committed once the leader that created the entry has replicated it on a majority of the servers, and the leader applies it', () => {
    const l = leaderWithAckedNoop();
    l.node.propose(enc('x'));
    l.out();
    expect(l.status.commit).toBe(1);
    l.step('appendResp', 'b', 1, { index: 2 });
    expect(l.status.commit).toBe(2);
    expect(l.applied.map((e) => new TextDecoder().decode(e.data))).toEqual(['', 'x']);
  });

  test('§5.3 The leader keeps track of the highest index it knows to be committed, and it includes that index in future AppendEntries RPCs', () => {
    const l = leaderWithAckedNoop();
    l.node.propose(enc('x'));
    l.out();
    const msgs = l.step('appendResp', 'b', 1, { index: 2 });
    expect(only(msgs, 'append').map((m) => [m.to, m.commit])).toEqual([
      ['b', 2],
      ['c', 2],
    ]);
  });

  test('§5.3 Once a follower learns that a log entry is committed, it applies the entry to its local state machine (in log order)', () => {
    const f = new Solo();
    f.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], commit: 2 });
    expect(f.applied.map((e) => e.index)).toEqual([1, 2]);
    f.step('heartbeat', 'b', 1, { commit: 3 });
    expect(f.applied.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  test('§5.3 When sending an AppendEntries RPC, the leader includes the index and term of the entry in its log that immediately precedes the new entries', () => {
    const l = new Solo({ terms: [1, 2], term: 2 });
    const msgs = l.makeLeader();
    expect(only(msgs, 'append').map((m) => [m.index, m.logTerm, m.entries?.map((e) => [e.index, e.term])])).toEqual([
      [2, 2, [[3, 3]]],
      [2, 2, [[3, 3]]],
    ]);
  });

  test("Figure 2 AppendEntries: Reply false if log doesn't contain an entry at prevLogIndex whose term matches prevLogTerm", () => {
    const f = new Solo({ terms: [1, 2], term: 2 });
    const wrongTerm = f.step('append', 'b', 2, { index: 2, logTerm: 3, entries: [entry(3, 3)], commit: 0 });
    expect(wrongTerm.map((m) => [m.type, m.reject, m.index])).toEqual([['appendResp', true, 2]]);
    const missing = f.step('append', 'b', 2, { index: 3, logTerm: 2, entries: [entry(4, 2)], commit: 0 });
    expect(missing.map((m) => [m.type, m.reject, m.index])).toEqual([['appendResp', true, 3]]);
    expect(f.logTerms()).toEqual([1, 2]);
  });

  test('Figure 2 AppendEntries: If an existing entry conflicts with a new one (same index but different terms), delete the existing entry and all that follow it', () => {
    const f = new Solo({ terms: [1, 1, 1, 1], term: 1 });
    const msgs = f.step('append', 'b', 2, { index: 1, logTerm: 1, entries: [entry(2, 2)], commit: 0 });
    expect(msgs.map((m) => [!!m.reject, m.index])).toEqual([[false, 2]]);
    expect(f.logTerms()).toEqual([1, 2]);
  });

  test('Figure 2 AppendEntries: Append any new entries not already in the log (and never truncate on a stale, shorter append)', () => {
    const f = new Solo();
    f.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], commit: 0 });
    expect(f.logTerms()).toEqual([1, 1, 1]);
    const late = f.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [entry(1, 1)], commit: 0 });
    expect(f.logTerms()).toEqual([1, 1, 1]);
    expect(late[0].index).toBe(1);
  });

  test('Figure 2 AppendEntries: If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new entry)', () => {
    const f = new Solo();
    f.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1)], commit: 5 });
    expect(f.status.commit).toBe(2);
    f.step('append', 'b', 1, { index: 2, logTerm: 1, entries: [], commit: 1 });
    expect(f.status.commit).toBe(2);
  });

  test('§5.3 After a rejection, the leader decrements nextIndex and retries the AppendEntries RPC (skipping to the follower\'s hint)', () => {
    const l = new Solo({ terms: [1, 1, 1], term: 2, commit: 1 });
    l.makeLeader();
    const msgs = l.step('appendResp', 'b', 3, { index: 3, reject: true, rejectHint: 1, logTerm: 1 });
    expect(msgs.map((m) => [m.type, m.to, m.index, m.logTerm, m.entries?.map((e) => e.index)])).toEqual([
      ['append', 'b', 1, 1, [2, 3, 4]],
    ]);
  });

  test('§5.3 (optimisation) the follower\'s rejection names the term of the conflicting entry and the last index it holds at or before it, so the leader skips whole terms', () => {
    const f = new Solo({ terms: [1, 1, 2, 2, 2, 2], term: 2 });
    // The leader's log has entry 6 at term 3, ours at term 2: hint = last index with term <= 3 → 6 (term 2).
    const r1 = f.step('append', 'l', 4, { index: 6, logTerm: 3, entries: [], commit: 0 });
    expect(r1.map((m) => [m.reject, m.rejectHint, m.logTerm])).toEqual([[true, 6, 2]]);
    // A leader whose entry 8 is at term 1 (we have no entry 8): skip to our end and all term-2 entries.
    const r2 = f.step('append', 'l', 4, { index: 8, logTerm: 1, entries: [], commit: 0 });
    expect(r2.map((m) => [m.reject, m.rejectHint, m.logTerm])).toEqual([[true, 2, 1]]);
  });

  test('§5.3 A leader never overwrites or deletes entries in its own log (Leader Append-Only)', () => {
    const l = new Solo({ terms: [1, 2, 2], term: 2 });
    l.makeLeader();
    l.step('appendResp', 'b', 3, { index: 1, reject: true, rejectHint: 0, logTerm: 0 });
    expect(l.logTerms()).toEqual([1, 2, 2, 3]);
  });

  test('§5.5 Raft RPCs are idempotent: a repeated AppendEntries leaves the log as it was and is answered the same', () => {
    const f = new Solo();
    const m = { index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1)], commit: 0 };
    const a = f.step('append', 'b', 1, m);
    const b = f.step('append', 'b', 1, m);
    expect(f.logTerms()).toEqual([1, 1]);
    expect(b).toEqual(a);
    expect(a.map((x) => [x.type, !!x.reject, x.index])).toEqual([['appendResp', false, 2]]);
  });
});

describe('§5.4 Safety', () => {
  test('§5.4.1 voter denies its vote if its own log is more up-to-date', () => {
    const voters = ['a', 'b', 'c', 'd', 'e'];
    const f = new Solo({ terms: [1, 2], term: 2, voters });
    // Different last terms: the later term is more up-to-date.
    expect(f.step('vote', 'b', 3, { index: 9, logTerm: 1 })[0].reject).toBe(true);
    // Same last term: the longer log is more up-to-date.
    expect(f.step('vote', 'c', 3, { index: 1, logTerm: 2 })[0].reject).toBe(true);
    // Equal logs are up-to-date enough.
    expect(f.step('vote', 'd', 3, { index: 2, logTerm: 2 })[0].reject).toBe(false);
  });

  test('§5.4.1 If the logs have last entries with different terms, the log with the later term is more up-to-date even when shorter', () => {
    const f = new Solo({ terms: [1, 1, 1, 1], term: 1 });
    expect(f.step('vote', 'b', 2, { index: 1, logTerm: 2 })[0].reject).toBe(false);
  });

  test('§5.4.2 never commits entries from previous terms by counting replicas', () => {
    const l = new Solo({ terms: [1, 2], term: 2, commit: 1 });
    l.makeLeader(); // term 3, appends entry 3
    l.step('appendResp', 'b', 3, { index: 2 });
    // Entry 2 (term 2) is on a majority but is not committed by counting.
    expect(l.status.commit).toBe(1);
  });

  test('§5.4.2 entries from previous terms are committed indirectly because of the Log Matching Property, once an entry of the current term commits', () => {
    const l = new Solo({ terms: [1, 2], term: 2, commit: 1 });
    l.makeLeader();
    l.step('appendResp', 'b', 3, { index: 3 });
    expect(l.status.commit).toBe(3);
    expect(l.applied.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  test('§8 a leader commits a blank no-op entry into the log at the start of its term', () => {
    const l = new Solo({ terms: [1], term: 1 });
    l.makeLeader();
    const last = l.storage.entries(2, 3)[0];
    expect([last.term, last.type, last.data.length]).toEqual([2, 'normal', 0]);
  });
});

describe('§5.4.1 Election restriction, end to end', () => {
  test('§5.4.1 a candidate cannot win an election unless its log contains all committed entries', () => {
    const net = new Network(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    net.campaign('a');
    net.stop('c');
    net.propose('a', 'committed-without-c');
    net.stop('a');
    net.start('c');
    net.campaign('c');
    // b holds the committed entry and refuses c, whose log lacks it.
    expect(net.get('c').node.status().role).toBe('candidate');
    net.campaign('b');
    expect(net.get('b').node.status().role).toBe('leader');
    net.tick(2);
    expect(net.appliedData('c')).toEqual(['committed-without-c']);
  });
});

describe('§6 Cluster membership changes', () => {
  test('§6 new servers join as non-voting members: the leader replicates entries to them, but they are not considered for majorities', () => {
    const l = new Solo({ learners: ['d'] });
    const msgs = l.makeLeader();
    expect(only(msgs, 'append').map((m) => m.to)).toEqual(['b', 'c', 'd']);
    l.step('appendResp', 'd', 1, { index: 1 });
    expect(l.status.commit).toBe(0);
    l.step('appendResp', 'b', 1, { index: 1 });
    expect(l.status.commit).toBe(1);
  });

  test('§6 a non-voting member never starts an election', () => {
    const d = new Solo({ id: 'd', learners: ['d'] });
    expect(d.tick(50)).toEqual([]);
    expect(d.status.role).toBe('follower');
  });

  test('§6 only one configuration change at a time: a second is refused while the first is not yet applied', () => {
    const l = new Solo();
    l.makeLeader();
    l.step('appendResp', 'b', 1, { index: 1 });
    l.node.proposeConfChange({ type: 'addLearner', node: 'd' });
    l.out();
    expect(() => l.node.proposeConfChange({ type: 'addLearner', node: 'e' })).toThrow(ProposalDroppedError);
    l.step('appendResp', 'b', 1, { index: 2 });
    expect(l.status.conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(() => l.node.proposeConfChange({ type: 'addLearner', node: 'e' })).not.toThrow();
  });

  test('§6 a leader that is not part of the new configuration steps down once the entry is committed', () => {
    const l = new Solo();
    l.makeLeader();
    l.step('appendResp', 'b', 1, { index: 1 });
    l.node.proposeConfChange({ type: 'removeNode', node: 'a' });
    l.out();
    expect(l.status.role).toBe('leader');
    l.step('appendResp', 'b', 1, { index: 2 });
    expect(l.status.role).toBe('follower');
    expect(l.status.conf.voters).toEqual(['b', 'c']);
  });

  test('§6 servers disregard RequestVote RPCs when they believe a current leader exists (within the minimum election timeout)', () => {
    const f = new Solo({ cfg: { checkQuorum: true } });
    f.step('heartbeat', 'b', 1, { commit: 0 });
    expect(f.step('vote', 'c', 2, { index: 9, logTerm: 9 })).toEqual([]);
    expect(f.status.term).toBe(1);
    f.node.tick();
    for (let i = 0; i < 9; i++) f.node.tick();
    f.out();
    // Past the election timeout without hearing from the leader: the vote is considered.
    const f2 = new Solo({ cfg: { checkQuorum: true, rand: () => 0.99 } });
    f2.step('heartbeat', 'b', 1, { commit: 0 });
    f2.tick(10);
    expect(f2.step('vote', 'c', 2, { index: 9, logTerm: 9 }).map((m) => m.reject)).toEqual([false]);
  });

  test('§6 conf change entries take effect on apply: applyConfChange returns the new configuration', () => {
    const l = new Solo();
    expect(l.node.applyConfChange({ type: 'addLearner', node: 'd' })).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(l.node.applyConfChange({ type: 'addVoter', node: 'd' })).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    expect(l.node.applyConfChange({ type: 'removeNode', node: 'b' })).toEqual({ voters: ['a', 'c', 'd'], learners: [] });
    expect(encodeConfChange({ type: 'removeNode', node: 'b' }).length).toBeGreaterThan(0);
  });
});

describe('§7 Log compaction', () => {
  function compactedLeader(chunk: number): Solo {
    const l = new Solo({ terms: [1, 1, 1, 1, 1], term: 1, commit: 5, cfg: { snapshotChunkBytes: chunk, applied: 5 } });
    l.storage.createSnapshot(5, { voters: ['a', 'b', 'c'], learners: [] }, enc('state@5!'));
    l.storage.compact(5);
    l.makeLeader();
    return l;
  }

  test('§7 the leader must occasionally send snapshots to followers that lag behind: InstallSnapshot goes in chunks of snapshotChunkBytes', () => {
    const l = compactedLeader(3);
    let msgs = l.step('appendResp', 'b', 2, { index: 5, reject: true, rejectHint: 0, logTerm: 0 });
    const chunks: string[] = [];
    for (let i = 0; i < 5 && msgs.length > 0; i++) {
      const s = only(msgs, 'snapshot')[0]!;
      chunks.push(new TextDecoder().decode(s.snapshot!.chunk));
      expect(s.snapshot!.offset).toBe(i * 3);
      if (s.snapshot!.done) break;
      msgs = l.step('snapshotResp', 'b', 2, { index: 5, offset: s.snapshot!.offset + s.snapshot!.chunk.length });
    }
    expect(chunks).toEqual(['sta', 'te@', '5!']);
    expect(l.status.progress.b.state).toBe('snapshot');
    l.step('appendResp', 'b', 2, { index: 5 });
    expect(l.status.progress.b.state).toBe('replicate');
  });

  test('Figure 13 InstallSnapshot receiver: discard the entire log and reset the state machine using the snapshot contents (only once the last chunk arrives)', () => {
    const f = new Solo({ terms: [1, 1], term: 1 });
    const meta = { index: 10, term: 2, conf: { voters: ['a', 'b', 'c'], learners: [] } };
    const first = f.step('snapshot', 'b', 2, { snapshot: { meta, offset: 0, chunk: enc('ab'), done: false } });
    expect(first.map((m) => [m.type, m.offset])).toEqual([['snapshotResp', 2]]);
    expect(f.readies.some((r) => r.snapshot)).toBe(false);
    const last = f.step('snapshot', 'b', 2, { snapshot: { meta, offset: 2, chunk: enc('cd'), done: true } });
    expect(last.map((m) => [m.type, m.index, m.reject])).toEqual([['appendResp', 10, undefined]]);
    const rd = f.readies.find((r) => r.snapshot)!;
    expect(new TextDecoder().decode(rd.snapshot!.data)).toBe('abcd');
    expect(f.storage.firstIndex()).toBe(11);
    expect(f.status.commit).toBe(10);
  });

  test("Figure 13 InstallSnapshot receiver: if existing log entry has same index and term as snapshot's last included entry, retain log entries following it", () => {
    const f = new Solo({ terms: [1, 1, 1, 1], term: 1 });
    const meta = { index: 2, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] } };
    f.step('snapshot', 'b', 1, { snapshot: { meta, offset: 0, chunk: enc('x'), done: true } });
    expect(f.readies.some((r) => r.snapshot)).toBe(false);
    expect(f.logTerms()).toEqual([1, 1, 1, 1]);
    expect(f.status.commit).toBe(2);
  });
});

describe('§8 Client interaction and §9.6 pre-vote', () => {
  test('§8 a leader must check whether it has been deposed before processing a read-only request, by exchanging heartbeats with a majority', () => {
    const l = new Solo();
    l.makeLeader();
    l.step('appendResp', 'b', 1, { index: 1 });
    l.node.readIndex(enc('r1'));
    const hb = l.out();
    expect(only(hb, 'heartbeat').map((m) => [m.to, new TextDecoder().decode(m.context!)])).toEqual([
      ['b', 'r1'],
      ['c', 'r1'],
    ]);
    expect(l.readStates).toEqual([]);
    l.step('heartbeatResp', 'c', 1, { context: enc('r1') });
    expect(l.readStates).toEqual([{ index: 1, context: enc('r1') }]);
  });

  test('§8 a leader waits to serve reads until it has committed an entry of its own term (it then knows the commit index)', () => {
    const l = new Solo();
    l.makeLeader();
    l.node.readIndex(enc('r1'));
    expect(only(l.out(), 'heartbeat')).toEqual([]);
    const msgs = l.step('appendResp', 'b', 1, { index: 1 });
    expect(only(msgs, 'heartbeat').map((m) => m.to)).toEqual(['b', 'c']);
    l.step('heartbeatResp', 'b', 1, { context: enc('r1') });
    expect(l.readStates.map((r) => r.index)).toEqual([1]);
  });

  test('§9.6 Pre-vote: a server first asks whether it could win; its term does not change unless a majority would vote for it', () => {
    const f = new Solo({ terms: [1], term: 1, cfg: { preVote: true } });
    const msgs = f.tick(10);
    expect(f.status.role).toBe('preCandidate');
    expect(f.status.term).toBe(1);
    expect(msgs.map((m) => [m.type, m.term])).toEqual([
      ['preVote', 2],
      ['preVote', 2],
    ]);
    const votes = f.step('preVoteResp', 'b', 2, { reject: false });
    expect(f.status.role).toBe('candidate');
    expect(f.status.term).toBe(2);
    expect(only(votes, 'vote').map((m) => m.to)).toEqual(['b', 'c']);
  });

  test('§9.6 check-quorum: a leader that does not hear from a majority within an election timeout steps down', () => {
    const l = new Solo({ cfg: { checkQuorum: true } });
    l.makeLeader();
    l.tick(9);
    l.step('heartbeatResp', 'b', 1);
    l.tick(1);
    expect(l.status.role).toBe('leader');
    l.tick(10);
    expect(l.status.role).toBe('follower');
  });
});
