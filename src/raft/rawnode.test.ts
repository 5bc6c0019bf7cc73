import { describe, expect, test } from 'bun:test';
import { ProposalDroppedError } from './errors.ts';
import { enc, entry, only, Solo } from './node.test-helper.ts';
import { RaftNode } from './rawnode.ts';
import { MemoryStorage } from './storage.ts';

describe('RaftNode ready/advance', () => {
  test('a fresh node has nothing to do', () => {
    const s = new Solo();
    expect(s.node.hasReady()).toBe(false);
  });

  test('soft and hard state appear only when they change; mustSync only for term, vote or entries', () => {
    const s = new Solo();
    s.node.campaign();
    const rd = s.node.ready();
    expect(rd.softState).toEqual({ leader: null, role: 'candidate' });
    expect(rd.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.map((m) => m.type)).toEqual(['vote', 'vote']);
    s.node.advance(rd);
    expect(s.node.hasReady()).toBe(false);

    s.node.step({ type: 'voteResp', from: 'b', to: 'a', term: 1 });
    const won = s.node.ready();
    expect(won.softState).toEqual({ leader: 'a', role: 'leader' });
    expect(won.hardState).toBeUndefined();
    expect(won.entries.map((e) => [e.index, e.term])).toEqual([[1, 1]]);
    s.storage.append(won.entries);
    s.node.advance(won);

    s.node.step({ type: 'appendResp', from: 'b', to: 'a', term: 1, index: 1 });
    const commit = s.node.ready();
    expect(commit.hardState).toEqual({ term: 1, vote: 'a', commit: 1 });
    expect(commit.mustSync).toBe(false);
    expect(commit.committed.map((e) => e.index)).toEqual([1]);
    expect(commit.softState).toBeUndefined();
    s.node.advance(commit);
    expect(s.node.status().applied).toBe(1);
  });

  test('messages addressed to another node are ignored', () => {
    const s = new Solo();
    s.node.step({ type: 'heartbeat', from: 'b', to: 'z', term: 5, commit: 0 });
    expect(s.node.hasReady()).toBe(false);
    expect(s.status.term).toBe(0);
  });

  test('proposals on a follower are refused with ProposalDroppedError naming the leader', () => {
    const s = new Solo();
    s.step('heartbeat', 'b', 1, { commit: 0 });
    expect(() => s.node.propose(enc('x'))).toThrow(ProposalDroppedError);
    expect(() => s.node.propose(enc('x'))).toThrow(/leader is b/);
  });

  test('the leader refuses proposals beyond maxUncommittedBytes until entries commit', () => {
    const s = new Solo({ cfg: { maxUncommittedBytes: 100 } });
    s.makeLeader();
    s.node.propose(new Uint8Array(60));
    s.out();
    expect(() => s.node.propose(new Uint8Array(60))).toThrow(ProposalDroppedError);
    s.step('appendResp', 'b', 1, { index: 2 });
    expect(() => s.node.propose(new Uint8Array(60))).not.toThrow();
  });

  test('a restarted node resumes from storage: term, vote, commit, log and configuration', () => {
    const s = new Solo({ terms: [1, 1, 2], term: 2, vote: 'b', commit: 2 });
    const again = new RaftNode({ id: 'a', storage: s.storage, electionTicks: 10, heartbeatTicks: 1, rand: () => 0, applied: 1 });
    const st = again.status();
    expect([st.term, st.vote, st.commit, st.applied, st.lastIndex]).toEqual([2, 'b', 2, 1, 3]);
    expect(st.conf).toEqual({ voters: ['a', 'b', 'c'], learners: [] });
    const rd = again.ready();
    expect(rd.committed.map((e) => e.index)).toEqual([2]);
    expect(rd.hardState).toBeUndefined();
  });

  test('status reports per-peer progress on the leader only', () => {
    const s = new Solo();
    expect(s.status.progress).toEqual({});
    s.makeLeader();
    s.step('appendResp', 'b', 1, { index: 1 });
    const p = s.status.progress;
    expect(p.b).toEqual({ match: 1, next: 2, state: 'replicate', recentActive: true, learner: false });
    expect(p.c.state).toBe('probe');
    s.node.reportUnreachable('b');
    expect(s.status.progress.b.state).toBe('probe');
  });

  test('a pending snapshot is exposed once, and advancing it marks it applied', () => {
    const s = new Solo();
    const meta = { index: 7, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] } };
    s.node.step({ type: 'snapshot', from: 'b', to: 'a', term: 1, snapshot: { meta, offset: 0, chunk: enc('s'), done: true } });
    const rd = s.node.ready();
    expect(rd.snapshot?.meta.index).toBe(7);
    expect(rd.mustSync).toBe(true);
    s.storage.applySnapshot(rd.snapshot!);
    s.node.advance(rd);
    expect(s.status.applied).toBe(7);
    s.step('append', 'b', 1, { index: 7, logTerm: 1, entries: [entry(8, 1)], commit: 8 });
    expect(s.applied.map((e) => e.index)).toEqual([8]);
  });

  test('leadership transfer and reads need a leader: a node without one refuses with ProposalDroppedError', () => {
    const s = new Solo();
    expect(() => s.node.transferLeader('b')).toThrow(ProposalDroppedError);
    expect(() => s.node.readIndex(enc('r'))).toThrow(ProposalDroppedError);
    s.step('heartbeat', 'b', 1, { commit: 0 });
    s.node.readIndex(enc('r'));
    expect(s.out().map((m) => [m.type, m.to])).toEqual([['readIndex', 'b']]);
  });

  test('a proposal forwarded to the leader as a propose message is appended and replicated', () => {
    const s = new Solo();
    s.makeLeader();
    s.step('appendResp', 'b', 1, { index: 1 });
    s.step('appendResp', 'c', 1, { index: 1 });
    const msgs = s.step('propose', 'b', 0, { entries: [entry(0, 0, 'fwd')] });
    expect(only(msgs, 'append').map((m) => m.entries?.map((e) => [e.index, e.term]))).toEqual([[[2, 1]], [[2, 1]]]);
  });

  test('reportSnapshot(false) aborts a snapshot transfer; the next heartbeat response restarts it', () => {
    const s = new Solo({ terms: [1, 1, 1], term: 1, commit: 3, cfg: { applied: 3 } });
    s.storage.createSnapshot(3, { voters: ['a', 'b', 'c'], learners: [] }, enc('snap'));
    s.storage.compact(3);
    s.makeLeader();
    const first = s.step('appendResp', 'b', 2, { index: 3, reject: true, rejectHint: 0, logTerm: 0 });
    expect(only(first, 'snapshot')).toHaveLength(1);
    s.node.reportSnapshot('b', false);
    expect(s.status.progress.b.state).toBe('probe');
    const again = s.step('heartbeatResp', 'b', 2);
    expect(only(again, 'snapshot').map((m) => m.snapshot!.offset)).toEqual([0]);
  });

  test('malformed input is dropped: gapped entries, acknowledgements beyond the log, bad terms', () => {
    const f = new Solo();
    expect(f.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [entry(1, 1), entry(3, 1)], commit: 3 })).toEqual([]);
    expect(f.status.lastIndex).toBe(0);
    f.node.step({ type: 'heartbeat', from: 'b', to: 'a', term: -1 });
    f.node.step({ type: 'heartbeat', from: 'b', to: 'a', term: Number.NaN });
    expect(f.node.hasReady()).toBe(false);
    const l = new Solo();
    l.makeLeader();
    l.step('appendResp', 'b', 1, { index: 99 });
    expect(l.status.commit).toBe(0);
    expect(l.status.progress.b.match).toBe(0);
  });

  test('committed entries are handed out in Readies of at most maxCommittedSizePerReady bytes', () => {
    const f = new Solo({ cfg: { maxCommittedSizePerReady: 50 } });
    const ents = [1, 2, 3, 4, 5].map((i) => entry(i, 1, 'x'.repeat(20)));
    f.step('append', 'b', 1, { index: 0, logTerm: 0, entries: ents, commit: 5 });
    const sizes = f.readies.map((r) => r.committed.length).filter((n) => n > 0);
    expect(sizes).toEqual([1, 1, 1, 1, 1]);
    expect(f.applied.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('RaftNode with asyncStorageWrites', () => {
  /** A leader of three whose Readies are handed to storage at once but reported durable only by hand. */
  function leader() {
    const s = new Solo({ cfg: { asyncStorageWrites: true } });
    s.node.campaign();
    let rd = s.node.ready();
    s.storage.setHardState(rd.hardState!);
    s.node.advance(rd);
    s.node.step({ type: 'voteResp', from: 'b', to: 'a', term: 1 });
    rd = s.node.ready();
    s.storage.append(rd.entries);
    s.node.advance(rd);
    return s;
  }

  test('the leader counts itself in the quorum only once it reported its entries persisted', () => {
    const s = leader();
    s.node.step({ type: 'appendResp', from: 'b', to: 'a', term: 1, index: 1 });
    expect(s.node.status().commit).toBe(0); // b alone is not a quorum of three
    s.node.advance(s.node.ready());
    s.node.persisted(1, 1);
    const rd = s.node.ready();
    expect(rd.committed.map((e) => e.index)).toEqual([1]);
    expect(s.node.persistedIndex()).toBe(1);
  });

  test('a proposal is sent to followers before it is durable, and commits with one follower once it is', () => {
    const s = leader();
    s.node.persisted(1, 1);
    s.node.step({ type: 'appendResp', from: 'b', to: 'a', term: 1, index: 1 });
    s.node.step({ type: 'appendResp', from: 'c', to: 'a', term: 1, index: 1 });
    s.node.advance(s.node.ready());
    s.node.proposeMany([enc('x'), enc('y')]);
    const rd = s.node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2, 3]);
    // One append per follower carries both entries.
    expect(rd.messages.filter((m) => m.type === 'append').map((m) => [m.to, m.entries!.length])).toEqual([['b', 2], ['c', 2]]);
    s.storage.append(rd.entries);
    s.node.advance(rd);
    s.node.step({ type: 'appendResp', from: 'c', to: 'a', term: 1, index: 3 });
    expect(s.node.status().commit).toBe(1);
    s.node.persisted(3, 1);
    expect(s.node.status().commit).toBe(3);
  });

  test('a persisted report for entries overwritten since is ignored', () => {
    const s = new Solo({ cfg: { asyncStorageWrites: true } });
    s.step('append', 'b', 1, { index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1)], commit: 0 });
    s.step('append', 'c', 2, { index: 1, logTerm: 1, entries: [entry(2, 2)], commit: 0 });
    s.node.persisted(2, 1); // the fsync of the first write finished after the second overwrote index 2
    expect(s.node.persistedIndex()).toBe(0);
    s.node.persisted(2, 2);
    expect(s.node.persistedIndex()).toBe(2);
  });
});

test('setTimeouts changes the election and heartbeat ticks, and refuses an election not above the heartbeat', () => {
  const n = new RaftNode({ id: 'a', storage: new MemoryStorage(), rand: () => 0.5, electionTicks: 10, heartbeatTicks: 1 } as never);
  n.setTimeouts(40, 4);
  expect(n.timeouts).toEqual({ electionTicks: 40, heartbeatTicks: 4 });
  expect(() => n.setTimeouts(4, 4)).toThrow('electionTicks must exceed heartbeatTicks');
  expect(() => n.setTimeouts(10, 0)).toThrow('heartbeatTicks');
  expect(n.timeouts).toEqual({ electionTicks: 40, heartbeatTicks: 4 });
});
