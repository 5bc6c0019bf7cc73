// Randomized runs (seeded, so a failure replays exactly) checking Raft's safety properties after
// every delivered message: one leader per term, and applied logs that never disagree.
import { describe, expect, test } from 'bun:test';
import { ProposalDroppedError } from './errors.ts';
import { checkSafety, enc, Network, seededRand } from './network.test-helper.ts';
import type { NodeId } from './types.ts';

export function run(seed: number, steps: number): Network {
  const rng = seededRand(seed);
  const ids = ['a', 'b', 'c', 'd', 'e'].slice(0, 3 + Math.floor(rng() * 3));
  const net = new Network(ids, {
    snapshotChunkBytes: 7,
    maxInflightMsgs: 1 + Math.floor(rng() * 4),
    maxSizePerMsg: 64,
    preVote: rng() < 0.7,
    checkQuorum: rng() < 0.7,
  });
  net.keepLog = false;
  const leaders = new Map<number, NodeId>();
  net.afterStep = () => checkSafety(net, leaders, seed);
  net.reorder = rng;
  let dropRate = 0;
  net.filter = () => rng() < dropRate;
  net.duplicate = () => rng() < 0.02;
  let n = 0;
  for (let step = 0; step < steps; step++) {
    const r = rng();
    const who = ids[Math.floor(rng() * ids.length)];
    if (r < 0.05) {
      net.isolate(who);
    } else if (r < 0.08) {
      net.cut(who, ids[Math.floor(rng() * ids.length)]);
    } else if (r < 0.14) {
      net.heal();
      net.filter = () => rng() < dropRate;
      dropRate = rng() < 0.5 ? 0 : rng() * 0.3;
    } else if (r < 0.17) {
      net.stop(who);
      net.restart(who);
      net.start(who);
    } else if (r < 0.2) {
      // The host compacts what it has applied.
      const m = net.get(who);
      const applied = m.applied.length > 0 ? m.applied[m.applied.length - 1].index : 0;
      if (applied > m.storage.snapshot().meta.index && applied >= m.storage.firstIndex()) {
        m.storage.createSnapshot(applied, m.conf, enc(`state-of-${who}-at-${applied}`));
        m.storage.compact(applied);
      }
    } else if (r < 0.23) {
      const l = net.leader();
      if (l) {
        try {
          net.get(l).node.transferLeader(ids[Math.floor(rng() * ids.length)]);
        } catch (e) {
          if (!(e instanceof ProposalDroppedError) && !(e instanceof Error)) throw e;
        }
      }
    } else if (r < 0.5) {
      for (const id of ids) {
        try {
          if (net.get(id).node.status().role === 'leader') net.get(id).node.propose(enc(`${seed}-${n++}`));
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
    }
    net.tick(1);
  }
  // Heal everything: the cluster must converge.
  net.heal();
  net.filter = undefined;
  net.reorder = undefined;
  net.duplicate = undefined;
  // A proposal may be lost when leadership changes before it commits; the client retries.
  const done = () => ids.every((id) => net.appliedData(id).includes(`final-${seed}`));
  for (let attempt = 0; attempt < 20 && !done(); attempt++) {
    const l = net.electLeader(500);
    try {
      net.get(l).node.propose(enc(`final-${seed}`));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
    net.tick(10);
  }
  if (globalThis.process?.env?.RAFT_FUZZ_DEBUG) {
    for (const id of ids) console.log(id, JSON.stringify(net.get(id).node.status()), net.appliedData(id).slice(-3), net.get(id).storage.firstIndex(), net.get(id).storage.lastIndex());
  }
  for (const id of ids) {
    expect(net.appliedData(id)).toContain(`final-${seed}`);
  }
  checkSafety(net, leaders, seed);
  return net;
}

const SEEDS = Number(globalThis.process?.env?.RAFT_FUZZ_SEEDS ?? 24);
const STEPS = Number(globalThis.process?.env?.RAFT_FUZZ_STEPS ?? 300);

describe('randomized safety', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    test(`seed ${seed}: one leader per term, applied logs agree, the cluster converges after healing`, () => {
      const net = run(seed, STEPS);
      if (globalThis.process?.env?.RAFT_FUZZ_STATS) {
        const snaps = net.ids().reduce((s, id) => s + net.get(id).snapshots.length, 0);
        console.log(`seed ${seed}: ${net.ids().length} nodes, term ${net.get(net.ids()[0]).node.status().term}, applied ${net.get(net.ids()[0]).applied.length}, snapshots installed ${snaps}`);
      }
    });
  }
});
