/**
 * A cluster's raft timing (Spec.Raft.ElectionTick and HeartbeatTick, in ticks of the raft host's
 * 50 ms) applied to this manager's raft host: once the store is open, and again at each commit that
 * changed them (`shoal swarm update --election-tick`, the API's Spec.Raft). Every manager applies
 * the same replicated values, so the cluster's followers wait as long as it says before campaigning.
 */
import type { MemoryStore } from '../store/index.ts';
import { raftTicksProblem } from '../raft-host/host-options.ts';
import { currentCluster } from './cluster.ts';

/** The part of RaftHost this needs. */
export interface TimedRaft {
  readonly timeouts: { electionTicks: number; heartbeatTicks: number };
  setTimeouts(electionTicks: number, heartbeatTicks: number): void;
}

/** Applies the cluster's ticks now and at every commit; returns the function that stops following. */
export function followRaftTiming(store: MemoryStore, raft: TimedRaft, log: (msg: string) => void = () => {}): () => void {
  let refused = '';
  const apply = () => {
    const r = currentCluster(store)?.Spec.Raft;
    if (!r) return;
    const { electionTicks, heartbeatTicks } = raft.timeouts;
    if (r.ElectionTick === electionTicks && r.HeartbeatTick === heartbeatTicks) return;
    const problem = raftTicksProblem(r.ElectionTick, r.HeartbeatTick);
    if (problem) {
      // Written before the API checked them (or by a newer manager): kept out, said once.
      const key = `${r.ElectionTick}/${r.HeartbeatTick}`;
      if (refused !== key) log(`raft: the cluster's timing is not applied (${problem}); keeping election ${electionTicks} and heartbeat ${heartbeatTicks} ticks`);
      refused = key;
      return;
    }
    raft.setTimeouts(r.ElectionTick, r.HeartbeatTick);
    log(`raft: election timeout ${r.ElectionTick} ticks, heartbeat ${r.HeartbeatTick} ticks (from the cluster's Spec.Raft)`);
  };
  apply();
  return store.watch((ev) => { if (ev.kind === 'commit') apply(); });
}
