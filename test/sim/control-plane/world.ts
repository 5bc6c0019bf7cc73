/**
 * The control plane on simulated time: one store, the real manager (every stage and the dispatcher,
 * as the daemon wires them) on whichever manager is the leader, and simulated agents on simulated
 * links. Faults and workload come from the seed (workload.ts); the checks from invariants.ts.
 *
 * Time: a SimClock event queue. The stages' code is asynchronous (store writes resolve on microtasks,
 * passes wait a setImmediate turn), so after every batch of events at one instant the real event
 * loop is drained until the store stays put for a few turns. Nothing reads the real clock or does
 * I/O, so the order of everything is a function of the seed.
 *
 * Leader changes are modelled as the leader's manager stopping and, after an election gap, a
 * fresh Manager starting on another manager over the same store. This stands for a store replica
 * fed by Raft: the Raft simulator (test/sim/cluster.ts) already checks that a new leader's log has
 * every committed entry, so a new leader's store is the old one's committed state.
 */
import { Manager } from '../../../src/daemon/manager-stages.ts';
import { useIdSource } from '../../../src/lib/ids.ts';
import { memoryStore, type MemoryStore } from '../../../src/store/index.ts';
import type { Node } from '../../../src/types/index.ts';
import { SimClock } from '../clock.ts';
import { Rng } from '../rng.ts';
import { SimAgent } from './agent.ts';
import { Link, connPair, stageClock, EPOCH_MS } from './net.ts';

export const CONNECT_TIMEOUT_MS = 1_000;
const QUIET_TURNS = 3;
const MAX_TURNS_PER_STEP = 10_000;
const TRACE_LINES = 60;

export class World {
  readonly sim = new SimClock();
  readonly rng: Rng;
  readonly store: MemoryStore = memoryStore();
  readonly agents: SimAgent[] = [];
  readonly links = new Map<string, Link>();
  readonly managerIds: string[];
  leaderId: string | null = null;
  leader: Manager | null = null;
  /** Faults and failures are injected only while this holds. */
  chaos = true;
  readonly trace: string[] = [];
  steps = 0;
  #transition: Promise<void> = Promise.resolve();
  readonly #restoreIds: () => void;

  constructor(seed: number, agents: number, managers: number) {
    this.rng = new Rng(seed);
    const ids = this.rng.fork();
    this.#restoreIds = useIdSource(() => ids.u32() & 0xff);
    this.managerIds = Array.from({ length: managers }, (_, i) => `m${i + 1}`);
    const env = {
      sim: this.sim,
      rng: this.rng.fork(),
      connect: (nodeId: string, signal: AbortSignal) => this.#connect(nodeId, signal),
      chaos: () => this.chaos,
      trace: (l: string) => this.log(l),
    };
    for (let i = 1; i <= agents; i++) {
      const id = `n${i}`;
      this.links.set(id, new Link());
      this.agents.push(new SimAgent(id, env));
    }
  }

  get nowMs(): number { return this.sim.nowMs; }

  log(line: string): void {
    this.trace.push(`${(this.sim.nowMs / 1000).toFixed(3)}s ${line}`);
    if (this.trace.length > TRACE_LINES * 50) this.trace.splice(0, this.trace.length - TRACE_LINES);
  }

  lastTrace(): string[] { return this.trace.slice(-TRACE_LINES); }

  async boot(): Promise<void> {
    const at = new Date(EPOCH_MS).toISOString();
    await this.store.update((tx) => {
      for (const a of this.agents) {
        const n: Node = {
          ID: a.nodeId, Version: { Index: 0 }, CreatedAt: at, UpdatedAt: at,
          Spec: { Role: 'worker', Availability: 'active', Labels: {} },
          Description: { Hostname: a.nodeId },
          Status: { State: 'unknown' },
        } as Node;
        tx.create('nodes', n);
      }
    });
    this.elect(this.managerIds[0]!, 0);
    for (const a of this.agents) a.boot();
    await this.settle();
  }

  /** The leader (if any) stops; `next` takes over after `gapMs`. */
  elect(next: string, gapMs: number): void {
    this.#transition = this.#transition.then(async () => {
      const old = this.leader;
      this.leader = null;
      this.leaderId = null;
      if (old) await old.stop();
      this.log(`leader: none (was ${old ? 'up' : 'none'}), ${next} in ${gapMs} ms`);
      this.sim.after(gapMs, () => {
        this.#transition = this.#transition.then(async () => {
          const m = new Manager(this.store, () => {}, { clock: stageClock(this.sim), random: () => this.rng.next(), managers: () => this.managerIds, statusMinGapMs: 0 });
          this.leader = m;
          this.leaderId = next;
          await m.start();
          this.log(`leader: ${next}`);
        });
      });
    });
  }

  get electing(): boolean { return this.leader === null; }

  #connect(nodeId: string, signal: AbortSignal) {
    const link = this.links.get(nodeId)!;
    const agent = this.agents.find((a) => a.nodeId === nodeId)!;
    const leader = this.leader;
    return new Promise<import('../../../src/manager/dispatcher/conn.ts').Conn>((resolve, reject) => {
      if (!leader || link.cut || !agent.up || signal.aborted || !leader.dispatcher.running) {
        this.sim.after(CONNECT_TIMEOUT_MS, () => reject(new Error(`cannot reach the leader from ${nodeId}`)));
        return;
      }
      const [mine, theirs] = connPair(link);
      leader.dispatcher.accept(theirs, { nodeId });
      resolve(mine);
    });
  }

  /** Run the event loop until simulated time `untilMs`, calling `check` after each step. */
  async runUntil(untilMs: number, check: () => string | null): Promise<string | null> {
    while (this.sim.peekTime() <= untilMs) {
      const at = this.sim.peekTime();
      while (this.sim.peekTime() === at) this.sim.step();
      this.steps++;
      await this.settle();
      const v = check();
      if (v) return v;
    }
    this.sim.nowMs = Math.max(this.sim.nowMs, untilMs);
    return null;
  }

  /** Drain the real event loop: until the store stays put for a few turns and no transition runs. */
  async settle(): Promise<void> {
    let last = -1;
    let quiet = 0;
    let pendingTransition = true;
    void this.#transition.then(() => { pendingTransition = false; });
    for (let i = 0; i < MAX_TURNS_PER_STEP; i++) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.store.index === last && !pendingTransition) {
        if (++quiet >= QUIET_TURNS) return;
      } else {
        quiet = 0;
        last = this.store.index;
      }
    }
    throw new Error(`the control plane never went quiet within ${MAX_TURNS_PER_STEP} turns at ${this.sim.nowMs} ms (${pendingTransition ? 'a leader change was still under way' : `the store kept changing: index ${this.store.index}`})`);
  }

  async shutdown(): Promise<void> {
    for (const a of this.agents) a.crash();
    const m = this.leader;
    this.leader = null;
    await m?.stop();
    this.#restoreIds();
  }
}
