import { expect, test } from 'bun:test';
import { memoryStore } from '../store/index.ts';
import type { Cluster } from '../types/index.ts';
import { defaultClusterSpec } from './cluster.ts';
import { followRaftTiming, type TimedRaft } from './raft-timing.ts';

function fakeRaft(): { calls: number; timeouts: TimedRaft['timeouts']; setTimeouts: TimedRaft['setTimeouts'] } {
  return {
    calls: 0,
    timeouts: { electionTicks: 14, heartbeatTicks: 2 },
    setTimeouts(e, h) { this.calls++; this.timeouts = { electionTicks: e, heartbeatTicks: h }; },
  };
}

async function setTicks(store: ReturnType<typeof memoryStore>, e: number, h: number): Promise<void> {
  await store.update((tx) => {
    const c = tx.get('clusters', 'c')!;
    tx.update('clusters', { ...c, Spec: { ...c.Spec, Raft: { ...c.Spec.Raft, ElectionTick: e, HeartbeatTick: h } } });
  });
}

test('a change of the ticks is applied at the commit; bad stored values are kept out and said once', async () => {
  const store = memoryStore();
  const cluster: Cluster = { ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: defaultClusterSpec(), JoinTokens: { Worker: 'w', Manager: 'm' } } as Cluster;
  await store.update((tx) => tx.create('clusters', cluster));
  const raft = fakeRaft();
  const logs: string[] = [];
  const stop = followRaftTiming(store, raft, (m) => logs.push(m));
  expect(raft.calls).toBe(0); // the defaults are what the host runs with
  await setTicks(store, 40, 4);
  expect(raft.timeouts).toEqual({ electionTicks: 40, heartbeatTicks: 4 });
  await setTicks(store, 5, 4); // not above twice the heartbeat
  await setTicks(store, 5, 4);
  expect(raft.timeouts).toEqual({ electionTicks: 40, heartbeatTicks: 4 });
  expect(logs.filter((l) => l.includes('not applied'))).toHaveLength(1);
  stop();
  await setTicks(store, 100, 2);
  expect(raft.timeouts).toEqual({ electionTicks: 40, heartbeatTicks: 4 });
});
