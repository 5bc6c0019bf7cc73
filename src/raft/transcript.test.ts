// Golden transcripts: the exact message exchange of small scripted scenarios. A change in the core
// that alters what goes on the wire shows up here line by line.
import { describe, expect, test } from 'bun:test';
import { enc, Network } from './network.test-helper.ts';
import type { Message } from './types.ts';

function line(m: Message, dropped: boolean): string {
  const parts = [`${m.from}>${m.to}`, m.type, `t${m.term}`];
  if (m.index !== undefined) parts.push(`i${m.index}`);
  if (m.logTerm !== undefined) parts.push(`lt${m.logTerm}`);
  if (m.entries) parts.push(`[${m.entries.map((e) => `${e.index}/${e.term}`).join(',')}]`);
  if (m.commit !== undefined) parts.push(`c${m.commit}`);
  if (m.reject) parts.push('REJECT');
  if (m.rejectHint !== undefined) parts.push(`hint${m.rejectHint}`);
  if (m.snapshot) parts.push(`snap@${m.snapshot.meta.index}+${m.snapshot.offset}${m.snapshot.done ? ' done' : ''}`);
  if (m.offset !== undefined) parts.push(`off${m.offset}`);
  if (dropped) parts.push('(dropped)');
  return parts.join(' ');
}

function transcript(net: Network, since: number): string[] {
  return net.log.slice(since).map((x) => line(x.m, x.dropped));
}

describe('golden transcripts', () => {
  test('three nodes: pre-vote, vote, the new leader\'s no-op entry and its commit', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    expect(transcript(net, 0)).toEqual([
      'a>b preVote t1 i0 lt0',
      'a>c preVote t1 i0 lt0',
      'b>a preVoteResp t1',
      'c>a preVoteResp t1',
      'a>b vote t1 i0 lt0',
      'a>c vote t1 i0 lt0',
      'b>a voteResp t1',
      'c>a voteResp t1',
      'a>b append t1 i0 lt0 [1/1] c0',
      'a>c append t1 i0 lt0 [1/1] c0',
      'b>a appendResp t1 i1',
      'c>a appendResp t1 i1',
      'a>b append t1 i1 lt1 [] c1',
      'a>c append t1 i1 lt1 [] c1',
      'b>a appendResp t1 i1',
      'c>a appendResp t1 i1',
    ]);
  });

  test('a follower that missed entries while its acks were in flight: rejection with a hint, one probe, then replicate', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.stop('c');
    net.propose('a', 'x');
    net.propose('a', 'y');
    net.start('c');
    const since = net.log.length;
    net.propose('a', 'z');
    expect(transcript(net, since)).toEqual([
      'a>b append t1 i3 lt1 [4/1] c3',
      'a>c append t1 i3 lt1 [4/1] c3',
      'b>a appendResp t1 i4',
      'c>a appendResp t1 i3 lt1 REJECT hint1',
      'a>b append t1 i4 lt1 [] c4',
      'a>c append t1 i4 lt1 [] c4',
      'a>c append t1 i1 lt1 [2/1,3/1,4/1] c4',
      'b>a appendResp t1 i4',
      // The commit-only append crossed the probe: its rejection is stale and ignored.
      'c>a appendResp t1 i4 lt1 REJECT hint1',
      'c>a appendResp t1 i4',
      // Leaving probe state the leader sends the (possibly lagging) commit index once more.
      'a>c append t1 i4 lt1 [] c4',
      'c>a appendResp t1 i4',
    ]);
  });

  test('a snapshot in chunks to a follower behind the compaction point', () => {
    const net = new Network(['a', 'b', 'c'], { snapshotChunkBytes: 4 });
    net.campaign('a');
    net.stop('c');
    net.propose('a', 'x');
    const a = net.get('a');
    a.storage.createSnapshot(2, a.conf, enc('0123456789'));
    a.storage.compact(2);
    net.start('c');
    const since = net.log.length;
    net.tick(1);
    expect(transcript(net, since).filter((l) => l.includes('>c ') || l.startsWith('c>'))).toEqual([
      'a>c heartbeat t1 c1',
      'c>a heartbeatResp t1',
      'a>c append t1 i2 lt1 [] c2',
      'c>a appendResp t1 i2 lt1 REJECT hint1',
      'a>c snapshot t1 snap@2+0',
      'c>a snapshotResp t1 i2 off4',
      'a>c snapshot t1 snap@2+4',
      'c>a snapshotResp t1 i2 off8',
      'a>c snapshot t1 snap@2+8 done',
      'c>a appendResp t1 i2',
      'a>c append t1 i2 lt1 [] c2',
      'c>a appendResp t1 i2',
    ]);
  });
});
