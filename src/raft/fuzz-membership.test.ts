// Randomized membership changes under faults (seeded): learners join, get promoted once caught up,
// members are removed, leaders move, while the network drops, reorders and partitions.
import { describe, expect, test } from 'bun:test';
import { ProposalDroppedError } from './errors.ts';
import { checkSafety, enc, Network, seededRand } from './network.test-helper.ts';
import { MemoryStorage } from './storage.ts';
import type { NodeId } from './types.ts';

export function runMembership(seed: number, steps: number): { net: Network; changes: number } {
  const rng = seededRand(seed);
  const net = new Network(['a', 'b', 'c'], { snapshotChunkBytes: 9, maxInflightMsgs: 4, preVote: rng() < 0.7, checkQuorum: rng() < 0.7 });
  net.keepLog = false;
  const leaders = new Map<number, NodeId>();
  net.afterStep = () => checkSafety(net, leaders, seed);
  net.reorder = rng;
  let dropRate = 0;
  net.filter = () => rng() < dropRate;
  const spare = ['d', 'e', 'f', 'g', 'h', 'i'];
  let n = 0;
  let changes = 0;
  const pick = <T>(xs: T[]): T => xs[Math.floor(rng() * xs.length)];
  const tryDo = (f: () => void): boolean => {
    try {
      f();
      return true;
    } catch (e) {
      if (e instanceof ProposalDroppedError) return false;
      throw e;
    }
  };
  for (let step = 0; step < steps; step++) {
    const r = rng();
    const l = net.leader();
    const ids = net.ids();
    if (r < 0.04) {
      net.isolate(pick(ids));
    } else if (r < 0.1) {
      net.heal();
      net.filter = () => rng() < dropRate;
      dropRate = rng() < 0.5 ? 0 : rng() * 0.2;
    } else if (r < 0.13) {
      const who = pick(ids);
      net.restart(who);
    } else if (r < 0.16) {
      const m = net.get(pick(ids));
      const applied = m.applied.length > 0 ? m.applied[m.applied.length - 1].index : 0;
      if (applied > m.storage.snapshot().meta.index && applied >= m.storage.firstIndex()) {
        m.storage.createSnapshot(applied, m.conf, enc(`sm-${applied}`));
        m.storage.compact(applied);
      }
    } else if (r < 0.26 && l) {
      const st = net.get(l).node.status();
      const c = rng();
      if (c < 0.35 && spare.length > 0) {
        const id = spare[0];
        if (tryDo(() => net.get(l).node.proposeConfChange({ type: 'addLearner', node: id }))) {
          spare.shift();
          // A joining node starts from the configuration it is being added to.
          net.add(id, MemoryStorage.withConf(st.conf));
          changes++;
        }
      } else if (c < 0.7) {
        const ready = st.conf.learners.filter((id) => (st.progress[id]?.match ?? 0) >= st.lastIndex - 2);
        if (ready.length > 0 && tryDo(() => net.get(l).node.proposeConfChange({ type: 'addVoter', node: pick(ready) }))) changes++;
      } else if (st.conf.voters.length > 3 || st.conf.learners.length > 0) {
        const candidates = st.conf.voters.length > 3 ? [...st.conf.voters, ...st.conf.learners] : st.conf.learners;
        if (tryDo(() => net.get(l).node.proposeConfChange({ type: 'removeNode', node: pick(candidates) }))) changes++;
      }
    } else if (r < 0.29 && l) {
      tryDo(() => {
        const voters = net.get(l).node.status().conf.voters;
        net.get(l).node.transferLeader(pick(voters));
      });
    } else if (r < 0.6 && l) {
      tryDo(() => net.get(l).node.propose(enc(`${seed}-${n++}`)));
    }
    net.tick(1);
  }
  net.heal();
  net.filter = undefined;
  net.reorder = undefined;
  const members = () => {
    const c = net.get(net.electLeader(500)).node.status().conf;
    return [...c.voters, ...c.learners];
  };
  const done = () => members().every((id) => net.appliedData(id).includes(`final-${seed}`));
  for (let attempt = 0; attempt < 20 && !done(); attempt++) {
    const l = net.electLeader(500);
    tryDo(() => net.get(l).node.propose(enc(`final-${seed}`)));
    net.tick(10);
  }
  for (const id of members()) expect(net.appliedData(id)).toContain(`final-${seed}`);
  // Every member agrees on the configuration.
  const confs = new Set(members().map((id) => JSON.stringify(net.get(id).node.status().conf)));
  expect(confs.size).toBe(1);
  checkSafety(net, leaders, seed);
  return { net, changes };
}

const SEEDS = Number(globalThis.process?.env?.RAFT_FUZZ_SEEDS ?? 16);
const STEPS = Number(globalThis.process?.env?.RAFT_FUZZ_STEPS ?? 300);

describe('randomized membership changes', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    test(`seed ${seed}: safety holds and the final configuration is agreed and live`, () => {
      const { net, changes } = runMembership(seed, STEPS);
      if (globalThis.process?.env?.RAFT_FUZZ_STATS) {
        const l = net.leader()!;
        console.log(`seed ${seed}: ${changes} changes, conf ${JSON.stringify(net.get(l).node.status().conf)}`);
      }
    });
  }
});
