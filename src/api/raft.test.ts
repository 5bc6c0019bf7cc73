import { expect, test } from 'bun:test';
import { testApi } from './test-helper.ts';

test('GET /raft: the replica numbers, Docker-cased', async () => {
  const t = testApi();
  await t.init();
  t.deps.raftStatus = () => ({ role: 'leader', leader: 'n1', term: 3, commit: 41, applied: 40, lastIndex: 42, snapshotIndex: 10, voters: ['n1'], learners: [], progress: { n1: { match: 42, recentActive: true, learner: false } } });
  const r = await t.call('GET', '/raft');
  expect(r.status).toBe(200);
  expect(r.json).toMatchObject({ Role: 'leader', Leader: 'n1', Term: 3, CommitIndex: 41, AppliedIndex: 40, LastIndex: 42, SnapshotIndex: 10, Voters: ['n1'], Progress: { n1: { Match: 42, RecentActive: true, Learner: false } } });
});

test('GET /raft without a replica is a 503 that says so', async () => {
  const t = testApi();
  const r = await t.call('GET', '/raft');
  expect(r.status).toBe(503);
  expect(r.json.message).toContain('no Raft replica');
  t.deps.raftStatus = () => null;
  expect((await t.call('GET', '/raft')).status).toBe(503);
});
