// Scripted scenarios on an in-process network that can drop, cut and isolate.
import { describe, expect, test } from 'bun:test';
import { ProposalDroppedError } from './errors.ts';
import { dec, enc, Network } from './network.test-helper.ts';
import { MemoryStorage } from './storage.ts';
import type { NodeId } from './types.ts';

function agreeOnLeader(net: Network, ids: NodeId[]): NodeId {
  const leaders = new Set(ids.map((id) => net.get(id).node.status().leader));
  expect(leaders.size).toBe(1);
  const l = [...leaders][0];
  expect(l).not.toBeNull();
  return l!;
}

function lastIndex(net: Network, id: NodeId): number {
  return net.get(id).node.status().lastIndex;
}

describe('leader election', () => {
  for (const n of [3, 5]) {
    test(`${n} nodes elect exactly one leader that every node follows`, () => {
      const ids = ['a', 'b', 'c', 'd', 'e'].slice(0, n);
      const net = new Network(ids);
      const l = net.electLeader();
      net.tick(2);
      expect(agreeOnLeader(net, ids)).toBe(l);
      const roles = ids.map((id) => net.get(id).node.status().role).sort();
      expect(roles.filter((r) => r === 'leader')).toHaveLength(1);
      const terms = new Set(ids.map((id) => net.get(id).node.status().term));
      expect(terms.size).toBe(1);
    });
  }

  test('a minority cannot elect a leader; the majority side can', () => {
    const net = new Network(['a', 'b', 'c', 'd', 'e']);
    net.electLeader();
    for (const x of ['a', 'b']) for (const y of ['c', 'd', 'e']) net.cut(x, y);
    net.tick(60);
    const leaders = net.ids().filter((id) => net.get(id).node.status().role === 'leader');
    expect(leaders.length).toBe(1);
    expect(['c', 'd', 'e']).toContain(leaders[0]);
  });
});

describe('pre-vote and check-quorum', () => {
  test('pre-vote keeps a partitioned node from raising its term and disrupting the leader when it returns', () => {
    const net = new Network(['a', 'b', 'c']);
    const l = net.electLeader();
    const other = net.ids().find((id) => id !== l)!;
    const term = net.get(l).node.status().term;
    net.isolate(other);
    net.tick(100);
    expect(net.get(other).node.status().term).toBe(term);
    net.heal();
    net.tick(5);
    expect(net.get(l).node.status().role).toBe('leader');
    expect(net.get(l).node.status().term).toBe(term);
  });

  test('without pre-vote (and without check-quorum) the same partition disrupts the leader: the contrast', () => {
    const net = new Network(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    const l = net.electLeader();
    const other = net.ids().find((id) => id !== l)!;
    const term = net.get(l).node.status().term;
    net.isolate(other);
    net.tick(100);
    expect(net.get(other).node.status().term).toBeGreaterThan(term);
    net.heal();
    net.tick(25);
    expect(net.get(l).node.status().term).toBeGreaterThan(term);
  });

  test('check-quorum: an isolated leader steps down within an election timeout; the rest elect a new one', () => {
    const net = new Network(['a', 'b', 'c']);
    const old = net.electLeader();
    net.isolate(old);
    net.tick(25);
    expect(net.get(old).node.status().role).toBe('follower');
    const rest = net.ids().filter((id) => id !== old);
    const fresh = agreeOnLeader(net, rest);
    expect(fresh).not.toBe(old);
    net.heal();
    net.tick(3);
    expect(net.get(old).node.status().leader).toBe(fresh);
  });

  test('followers in a leader lease ignore a vote request from a node with a higher term', () => {
    const net = new Network(['a', 'b', 'c']);
    const l = net.electLeader();
    const [x, y] = net.ids().filter((id) => id !== l);
    const term = net.get(l).node.status().term;
    net.send({ type: 'vote', from: x, to: y, term: term + 5, index: 100, logTerm: 100 });
    expect(net.get(y).node.status().term).toBe(term);
    expect(net.get(y).node.status().leader).toBe(l);
  });
});

describe('log replication', () => {
  test('divergent follower logs are repaired with fast back-tracking in a few round trips', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    expect(net.leader()).toBe('a');
    net.propose('a', 'common');
    // a keeps accepting proposals no one else sees.
    net.isolate('a');
    for (let i = 0; i < 50; i++) net.get('a').node.propose(enc(`lost-${i}`));
    net.deliver();
    net.tick(30);
    const first = agreeOnLeader(net, ['b', 'c']);
    const kept: string[] = [];
    for (let i = 0; i < 30; i++) {
      kept.push(`kept-${i}`);
      net.propose(first, `kept-${i}`);
    }
    // A second election, so the leader probing a starts far beyond the common prefix.
    const second = first === 'b' ? 'c' : 'b';
    net.get(first).node.transferLeader(second);
    net.deliver();
    expect(net.leader()).toBe(second);
    net.heal();
    const since = net.log.length;
    net.tick(5);
    const rejects = net.log.slice(since).filter((x) => x.m.type === 'appendResp' && x.m.from === 'a' && x.m.reject);
    // One rejection skips all of a's term-1 entries at once (decrementing one by one would take 30+).
    expect(rejects.length).toBe(1);
    for (const id of net.ids()) expect(net.appliedData(id)).toEqual(['common', ...kept]);
    expect(lastIndex(net, 'a')).toBe(lastIndex(net, second));
  });

  test('a follower that restarts from its storage catches up', () => {
    const net = new Network(['a', 'b', 'c']);
    const l = net.electLeader();
    net.propose(l, 'one');
    const f = net.ids().find((id) => id !== l)!;
    net.stop(f);
    net.propose(l, 'two');
    net.restart(f);
    net.start(f);
    net.tick(3);
    expect(net.appliedData(f)).toEqual(['one', 'two']);
  });

  test('appends are batched within maxSizePerMsg', () => {
    const net = new Network(['a', 'b', 'c'], { maxSizePerMsg: 250 });
    net.campaign('a');
    net.stop('b');
    for (let i = 0; i < 10; i++) net.propose('a', `${i}`.padEnd(100, '.'));
    const since = net.log.length;
    net.start('b');
    net.tick(3);
    const appends = net.log.slice(since).filter((x) => x.m.type === 'append' && x.m.to === 'b' && x.m.entries!.length > 0);
    for (const x of appends) {
      const bytes = x.m.entries!.reduce((s, e) => s + e.data.length + 16, 0);
      expect(x.m.entries!.length === 1 || bytes <= 250).toBe(true);
    }
    expect(appends.length).toBeGreaterThanOrEqual(5);
    expect(net.appliedData('b')).toHaveLength(10);
  });

  test('in-flight appends to a follower stay within maxInflightMsgs while it does not answer', () => {
    const net = new Network(['a', 'b', 'c'], { maxInflightMsgs: 3, maxEntriesPerMsg: 1 });
    net.campaign('a');
    net.propose('a', 'warm-up');
    expect(net.get('a').node.status().progress.c.state).toBe('replicate');
    net.filter = (m) => m.type === 'appendResp' && m.from === 'c';
    const since = net.log.length;
    for (let i = 0; i < 20; i++) net.propose('a', `p${i}`);
    const toC = net.log.slice(since).filter((x) => x.m.type === 'append' && x.m.to === 'c' && x.m.entries!.length > 0);
    expect(toC.length).toBe(3);
    // b answered, so everything still commits.
    expect(net.appliedData('a')).toHaveLength(21);
    net.heal();
    net.tick(10);
    expect(net.appliedData('c')).toHaveLength(21);
  });
});

describe('snapshots', () => {
  function compactLeader(net: Network, l: NodeId, data: Uint8Array): number {
    const m = net.get(l);
    const applied = m.applied[m.applied.length - 1].index;
    m.storage.createSnapshot(applied, m.conf, data);
    m.storage.compact(applied);
    return applied;
  }

  test('a lagging follower receives the snapshot in chunks, installs it once complete, then the newer entries', () => {
    const net = new Network(['a', 'b', 'c'], { snapshotChunkBytes: 16 });
    net.campaign('a');
    net.stop('c');
    for (let i = 0; i < 20; i++) net.propose('a', `v${i}`);
    const state = enc('x'.repeat(100));
    const snapIndex = compactLeader(net, 'a', state);
    net.propose('a', 'after');
    const since = net.log.length;
    net.start('c');
    net.tick(5);
    const chunks = net.log.slice(since).filter((x) => x.m.type === 'snapshot' && x.m.to === 'c');
    expect(chunks.length).toBe(Math.ceil(100 / 16));
    expect(chunks.map((x) => x.m.snapshot!.offset)).toEqual([0, 16, 32, 48, 64, 80, 96]);
    const c = net.get('c');
    expect(c.snapshots).toHaveLength(1);
    expect(c.snapshots[0].meta.index).toBe(snapIndex);
    expect(dec(c.snapshots[0].data)).toBe('x'.repeat(100));
    expect(net.appliedData('c')).toEqual(['after']);
    expect(net.get('a').node.status().progress.c.state).toBe('replicate');
  });

  test('a lost snapshot chunk is resent after an election timeout and the transfer completes', () => {
    const net = new Network(['a', 'b', 'c'], { snapshotChunkBytes: 10 });
    net.campaign('a');
    net.stop('c');
    for (let i = 0; i < 5; i++) net.propose('a', `v${i}`);
    compactLeader(net, 'a', enc('y'.repeat(35)));
    let droppedOnce = false;
    net.filter = (m) => {
      if (!droppedOnce && m.type === 'snapshot' && m.snapshot!.offset === 20) {
        droppedOnce = true;
        return true;
      }
      return false;
    };
    net.start('c');
    net.tick(30);
    expect(droppedOnce).toBe(true);
    expect(net.get('c').snapshots.map((s) => dec(s.data))).toEqual(['y'.repeat(35)]);
    net.propose('a', 'later');
    expect(net.appliedData('c')).toEqual(['later']);
  });
});

describe('membership changes', () => {
  test('a learner is added, catches up, and is promoted to voter once the host sees it caught up', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    for (let i = 0; i < 5; i++) net.propose('a', `v${i}`);
    // A joining node starts from the configuration before its addition.
    net.add('d', MemoryStorage.withConf({ voters: ['a', 'b', 'c'], learners: [] }));
    net.get('a').node.proposeConfChange({ type: 'addLearner', node: 'd' });
    net.tick(3);
    const st = net.get('a').node.status();
    expect(st.conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(st.progress.d.learner).toBe(true);
    expect(st.progress.d.match).toBe(st.lastIndex);
    expect(net.appliedData('d')).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    net.get('a').node.proposeConfChange({ type: 'addVoter', node: 'd' });
    net.tick(3);
    for (const id of net.ids()) expect(net.get(id).node.status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    // Four voters: losing two of them (a and d) blocks commits; losing one does not.
    net.stop('b');
    net.propose('a', 'three-of-four');
    expect(net.appliedData('d')).toContain('three-of-four');
  });

  test('removing the leader: it steps down after the change commits and the rest elect a leader among themselves', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.get('a').node.proposeConfChange({ type: 'removeNode', node: 'a' });
    net.tick(1);
    expect(net.get('a').node.status().role).toBe('follower');
    net.stop('a');
    net.tick(30);
    const fresh = agreeOnLeader(net, ['b', 'c']);
    expect(['b', 'c']).toContain(fresh);
    expect(net.get(fresh).node.status().conf.voters).toEqual(['b', 'c']);
    net.propose(fresh, 'after-removal');
    expect(net.appliedData('b')).toContain('after-removal');
    expect(net.appliedData('c')).toContain('after-removal');
  });

  test('a leader partitioned before its conf change replicates loses it; the new leader can change membership', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.isolate('a');
    net.get('a').node.proposeConfChange({ type: 'removeNode', node: 'c' });
    net.deliver();
    net.tick(30);
    const fresh = agreeOnLeader(net, ['b', 'c']);
    net.add('d', MemoryStorage.withConf({ voters: ['a', 'b', 'c'], learners: [] }));
    net.get(fresh).node.proposeConfChange({ type: 'addLearner', node: 'd' });
    net.heal();
    net.tick(5);
    for (const id of net.ids()) expect(net.get(id).node.status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(net.get('a').node.status().leader).toBe(fresh);
  });

  test('a leader partitioned after its conf change reached a majority: the new leader commits it', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    // b receives the entry, but a never hears back and c never sees it.
    net.filter = (m) => (m.from === 'a' && m.to === 'c') || m.to === 'a';
    net.get('a').node.proposeConfChange({ type: 'removeNode', node: 'c' });
    net.deliver();
    net.heal();
    net.isolate('a');
    // Only b has the entry and c's log is behind, so b wins and commits the removal.
    for (let i = 0; i < 40 && net.get('b').node.status().role !== 'leader'; i++) net.tick();
    expect(net.get('b').node.status().role).toBe('leader');
    expect(net.get('b').node.status().conf).toEqual({ voters: ['a', 'b'], learners: [] });
    net.heal();
    net.tick(30);
    const l = agreeOnLeader(net, ['a', 'b']);
    expect(['a', 'b']).toContain(l);
    expect(net.get('a').node.status().conf).toEqual({ voters: ['a', 'b'], learners: [] });
    net.propose(l, 'two-voters');
    expect(net.appliedData('a')).toContain('two-voters');
    expect(net.appliedData('b')).toContain('two-voters');
  });
});

describe('leadership transfer', () => {
  test('transfer to an up-to-date follower: TimeoutNow makes it campaign at once and win', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.propose('a', 'x');
    net.get('a').node.transferLeader('c');
    net.deliver();
    expect(net.leader()).toBe('c');
    agreeOnLeader(net, ['a', 'b', 'c']);
    net.propose('c', 'y');
    expect(net.appliedData('a')).toEqual(['x', 'y']);
  });

  test('transfer to a lagging follower first brings it up to date; proposals are refused meanwhile', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.stop('c');
    for (let i = 0; i < 5; i++) net.propose('a', `v${i}`);
    net.get('a').node.transferLeader('c');
    expect(() => net.get('a').node.propose(enc('refused'))).toThrow(ProposalDroppedError);
    net.start('c');
    net.tick(2);
    expect(net.leader()).toBe('c');
    expect(net.appliedData('c')).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  test('a transfer that cannot finish is abandoned after an election timeout', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.stop('c');
    net.propose('a', 'x');
    net.get('a').node.transferLeader('c');
    expect(net.get('a').node.status().transferee).toBe('c');
    net.tick(11);
    expect(net.get('a').node.status().transferee).toBeNull();
    expect(net.leader()).toBe('a');
    net.propose('a', 'accepted-again');
    expect(net.appliedData('b')).toContain('accepted-again');
  });
});

describe('ReadIndex', () => {
  test('on the leader: the read state arrives after a heartbeat round, at the commit index', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.propose('a', 'x');
    net.get('a').node.readIndex(enc('read-1'));
    net.deliver();
    const a = net.get('a');
    expect(a.readStates.map((r) => [r.index, dec(r.context)])).toEqual([[a.node.status().commit, 'read-1']]);
  });

  test('via a follower: forwarded to the leader, answered with the leader\'s commit index', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.propose('a', 'x');
    net.get('b').node.readIndex(enc('read-b'));
    net.deliver();
    const commit = net.get('a').node.status().commit;
    expect(net.get('b').readStates.map((r) => [r.index, dec(r.context)])).toEqual([[commit, 'read-b']]);
    expect(net.get('a').readStates).toEqual([]);
  });

  test('a deposed leader cut off from the majority never answers a read', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.isolate('a');
    net.get('a').node.readIndex(enc('stale'));
    net.tick(5);
    expect(net.get('a').readStates).toEqual([]);
  });

  test('a single-node cluster answers reads at once', () => {
    const net = new Network(['a']);
    net.campaign('a');
    net.get('a').node.readIndex(enc('solo'));
    net.deliver();
    expect(net.get('a').readStates.map((r) => dec(r.context))).toEqual(['solo']);
  });
});
