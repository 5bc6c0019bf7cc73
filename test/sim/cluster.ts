// One simulated cluster run: real raft core, real host loop and WAL on simulated disks, a simulated
// network and clock, clients writing and reading registers, and a fault schedule from the seed.
import type { NodeId } from '../../src/raft/index.ts';
import { RaftHost, type HostTimers, type RaftHostOptions } from '../../src/raft-host/host.ts';
import { NotLeaderError, ProposalLostError } from '../../src/raft-host/proposer.ts';
import { SimClock } from './clock.ts';
import { SimDisk } from './disk.ts';
import { Invariants, InvariantViolation } from './invariants.ts';
import { checkHistory, explainViolation, formatHistory, type Operation } from './linearizability.ts';
import { SimNetwork } from './network.ts';
import { RegisterMachine, encodeWrite } from './register.ts';
import { Rng } from './rng.ts';

export interface SimOptions {
  seed: number;
  /** Simulated run time before the calm final phase. */
  durationMs?: number;
  /** Calm phase at the end, at most: everything healed and restarted; a write must commit and every member catch up. */
  settleMs?: number;
  clients?: number;
  tickMs?: number;
  /** Trace lines kept for the failure report. */
  traceLines?: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error?: string;
  trace?: string[];
  steps: number;
  simMs: number;
  committed: number;
  ops: number;
  crashes: number;
  leaders: number;
}

const ALL: NodeId[] = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
const DIR = '/data/raft';

interface SimNode {
  id: NodeId;
  disk: SimDisk;
  host: RaftHost | null;
  sm: RegisterMachine;
  /** Bumped at every crash; timers of an older life are ignored. */
  life: number;
  retired: boolean;
}

export class Simulation {
  readonly clock = new SimClock();
  readonly rng: Rng;
  readonly net: SimNetwork;
  readonly inv = new Invariants();
  readonly nodes = new Map<NodeId, SimNode>();
  readonly history: Operation[] = [];
  /** Operations that definitely did not happen (refused, lost) or reads that gave no answer. */
  private readonly discarded = new Set<Operation>();
  private violation: string | null = null;
  private readonly trace: string[] = [];
  private readonly opts: Required<SimOptions>;
  private crashes = 0;
  private leaderChanges = 0;
  private finalWriteDone = false;
  /** Applied index on the leader when the final write committed; every member must reach it. */
  private finalIndex = 0;
  private converged = false;
  /** The founding voters: three or five, by seed. */
  private readonly founders: NodeId[];
  /** Core knobs drawn per seed, so flow control, chunked snapshots and both election modes get exercised. */
  private readonly knobs: NonNullable<RaftHostOptions['raft']>;

  constructor(opts: SimOptions) {
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    this.opts = { durationMs: 5000, settleMs: 20000, clients: 3, tickMs: 100, traceLines: 60, ...given } as Required<SimOptions>;
    this.rng = new Rng(opts.seed);
    this.net = new SimNetwork(this.clock, this.rng.fork());
    for (const id of ALL) this.nodes.set(id, { id, disk: new SimDisk(), host: null, sm: new RegisterMachine(), life: 0, retired: false });
    this.founders = ALL.slice(0, this.rng.chance(0.5) ? 3 : 5);
    const r = this.rng;
    this.knobs = {
      preVote: r.chance(0.8),
      checkQuorum: r.chance(0.8),
      maxSizePerMsg: r.pick([64, 1024, 1 << 20]),
      maxEntriesPerMsg: r.pick([1, 4, 256]),
      maxInflightMsgs: r.pick([1, 4, 256]),
      snapshotChunkBytes: r.pick([16, 256, 512 * 1024]),
    };
  }

  private log(line: string): void {
    this.trace.push(`${String(this.clock.nowMs).padStart(6)}ms ${line}`);
    if (this.trace.length > this.opts.traceLines) this.trace.shift();
  }

  private fail(msg: string): void {
    if (!this.violation) this.violation = msg;
  }

  private timersFor(n: SimNode): HostTimers {
    const life = n.life;
    const clock = this.clock;
    const rng = this.rng;
    return {
      every: (ms, fn) => {
        let on = true;
        const loop = () => {
          if (!on || n.life !== life) return;
          fn();
          clock.after(ms, loop);
        };
        clock.after(rng.range(1, ms), loop);
        return () => {
          on = false;
        };
      },
      // Models the time a write takes: whatever arrives meanwhile batches into the next ready.
      defer: (fn) => clock.after(rng.range(0, 2), () => n.life === life && fn()),
    };
  }

  private startNode(n: SimNode, bootstrap: boolean): void {
    n.sm = new RegisterMachine();
    const host = new RaftHost({
      id: n.id,
      dir: DIR,
      disk: n.disk,
      transport: this.net.endpoint(n.id),
      stateMachine: n.sm,
      bootstrap: bootstrap ? { voters: this.founders, learners: [] } : undefined,
      tickMs: this.opts.tickMs,
      raft: this.knobs,
      snapshotInterval: 40 + this.rng.int(80),
      snapshotTailEntries: this.rng.int(20),
      segmentBytes: 512 + this.rng.int(4096),
      rand: (() => {
        const r = this.rng.fork();
        return () => r.next();
      })(),
      timers: this.timersFor(n),
      observer: {
        persisted: (id, entries, storage) => this.inv.persisted(id, entries, storage),
        becameLeader: (id, term, storage) => {
          this.leaderChanges++;
          this.log(`${id} leads term ${term}`);
          this.inv.becameLeader(id, term, storage);
        },
        applied: (id, e) => this.inv.appliedEntry(id, e),
        restored: (id, index) => this.inv.restored(id, index),
      },
      onFatal: (err) => this.fail(`${n.id} stopped on ${err instanceof InvariantViolation ? '' : 'an error: '}${err.message}`),
    });
    n.host = host;
    try {
      host.start();
    } catch (err) {
      this.fail(`${n.id} failed to start: ${(err as Error).message}`);
    }
  }

  private crash(n: SimNode): void {
    if (!n.host) return;
    this.crashes++;
    this.log(`crash ${n.id}`);
    n.life++;
    // No stop(): a crash runs no shutdown code. Drop the transport handler so it stops receiving.
    this.net.endpoint(n.id).onMessage(() => {});
    n.host = null;
    n.disk.crash(this.rng, 0.3);
  }

  private restart(n: SimNode): void {
    if (n.host) return;
    this.log(`restart ${n.id}`);
    this.startNode(n, false);
  }

  leaderHost(): RaftHost | null {
    let best: RaftHost | null = null;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const s = n.host?.status;
      if (s && s.role === 'leader' && s.term > bestTerm) {
        best = n.host;
        bestTerm = s.term;
      }
    }
    return best;
  }

  // ---- clients ----

  private runClient(c: number): void {
    let counter = 0;
    let hint: NodeId | null = null;
    const next = () => {
      if (this.violation) return;
      if (this.clock.nowMs > this.opts.durationMs + 1500) return;
      const alive = [...this.nodes.values()].filter((n) => n.host && !n.retired);
      if (alive.length === 0) return void this.clock.after(50, next);
      const target = (hint && this.nodes.get(hint)?.host ? this.nodes.get(hint)! : this.rng.pick(alive)) as SimNode;
      const host = target.host!;
      const key = this.rng.chance(0.5) ? 'x' : 'y';
      const isWrite = this.rng.chance(0.6);
      const op: Operation = { client: c, key, kind: isWrite ? 'write' : 'read', value: null, call: this.clock.nowMs, ret: Infinity };
      // Recorded at invocation: an operation still running when the run ends is an unknown outcome.
      this.history.push(op);
      let done = false;
      const finish = (keep: boolean) => {
        if (done) return;
        done = true;
        if (!keep) this.discarded.add(op);
        this.clock.after(this.rng.range(0, 30), next);
      };
      // A crashed or partitioned target may never answer: give up after a bound, outcome unknown.
      this.clock.after(3000, () => finish(isWrite));
      const onErr = (err: Error) => {
        if (err instanceof NotLeaderError) {
          hint = err.leader;
          return finish(false);
        }
        hint = null;
        if (err instanceof ProposalLostError) return finish(false);
        finish(isWrite); // unknown outcome: a write may still land
      };
      if (isWrite) {
        op.value = `c${c}-${++counter}`;
        host.submit(encodeWrite(key, op.value), (err) => {
          if (done) return;
          if (err) return onErr(err);
          op.ret = this.clock.nowMs;
          finish(true);
        });
      } else {
        host.readCb((err) => {
          if (done) return;
          if (err) return onErr(err);
          op.value = target.sm.get(key);
          op.ret = this.clock.nowMs;
          finish(true);
        });
      }
    };
    this.clock.after(this.rng.range(0, 200), next);
  }

  // ---- faults ----

  private members(): NodeId[] {
    return ALL.filter((id) => !this.nodes.get(id)!.retired);
  }

  private fault(): void {
    const r = this.rng.next();
    const running = [...this.nodes.values()].filter((n) => n.host);
    const down = [...this.nodes.values()].filter((n) => !n.host && !n.retired && n.life > 0);
    if (r < 0.16 && running.length > 0) {
      this.crash(this.rng.pick(running));
    } else if (r < 0.32 && down.length > 0) {
      this.restart(this.rng.pick(down));
    } else if (r < 0.42) {
      const ids = this.rng.shuffle(this.members());
      const k = this.rng.range(1, Math.max(1, Math.floor(ids.length / 2)));
      this.net.partition(ids.slice(0, k), ids.slice(k));
      this.log(`partition ${ids.slice(0, k)} | ${ids.slice(k)}`);
    } else if (r < 0.48) {
      const l = this.leaderHost();
      if (l) {
        this.net.isolate(l.id, ALL);
        this.log(`isolate leader ${l.id}`);
      }
    } else if (r < 0.54) {
      const [a, b] = this.rng.shuffle(this.members());
      if (a && b) {
        this.net.cutOneWay(a, b);
        this.log(`cut ${a}->${b}`);
      }
    } else if (r < 0.68) {
      this.net.healAll();
      this.log('heal');
    } else if (r < 0.76) {
      const bad = this.rng.chance(0.5);
      this.net.faults = bad
        ? { lossRate: this.rng.next() * 0.2, duplicateRate: this.rng.next() * 0.1, minDelayMs: 1, maxDelayMs: this.rng.range(5, 80) }
        : { lossRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 };
      this.log(`network ${JSON.stringify(this.net.faults)}`);
    } else if (r < 0.9) {
      this.membershipChange();
    } else {
      const l = this.leaderHost();
      if (l) {
        this.log(`transfer leadership from ${l.id}`);
        l.transferLeadership().catch(() => {});
      }
    }
  }

  private membershipChange(): void {
    const l = this.leaderHost();
    if (!l) return;
    const conf = l.status.conf;
    const spare = ALL.find((id) => !conf.voters.includes(id) && !conf.learners.includes(id) && !this.nodes.get(id)!.retired);
    const learner = conf.learners[0];
    const done = (what: string) => (err: Error | null) => this.log(`${what}: ${err ? err.name : 'applied'}`);
    if (learner && this.rng.chance(0.7)) {
      this.log(`promote ${learner}`);
      l.changeConfCb('addVoter', learner, done(`promote ${learner}`));
    } else if (spare && this.rng.chance(0.6)) {
      const n = this.nodes.get(spare)!;
      if (!n.host) this.startNode(n, false);
      this.log(`add learner ${spare}`);
      l.changeConfCb('addLearner', spare, done(`add learner ${spare}`));
    } else if (conf.voters.length > 2) {
      // Now and then the leader removes itself: it must hand over and step down.
      const victim = this.rng.chance(0.2) ? l.id : this.rng.pick(conf.voters.filter((v) => v !== l.id));
      this.log(`remove ${victim}`);
      l.changeConfCb('removeNode', victim, (err) => {
        done(`remove ${victim}`)(err);
        // A removed id is never reused: its node leaves for good once the removal is applied.
        if (!err) {
          const v = this.nodes.get(victim)!;
          v.retired = true;
          v.host?.stop();
          v.host = null;
        }
      });
    }
  }

  // ---- run ----

  run(): SimResult {
    const { durationMs, settleMs } = this.opts;
    this.log(`founders ${this.founders} knobs ${JSON.stringify(this.knobs)}`);
    for (const id of this.founders) this.startNode(this.nodes.get(id)!, true);
    for (let c = 0; c < this.opts.clients; c++) this.runClient(c);
    const faultEvery = () => {
      if (this.clock.nowMs >= durationMs) return;
      this.fault();
      this.clock.after(this.rng.range(100, 600), faultEvery);
    };
    this.clock.after(this.rng.range(300, 1000), faultEvery);
    this.clock.at(durationMs, () => {
      this.log('settle: heal, calm network, restart all');
      this.net.healAll();
      this.net.faults = { lossRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 };
      for (const n of this.nodes.values()) if (!n.host && !n.retired && n.life > 0) this.restart(n);
    });
    // Liveness: once calm, a write must commit and every running member must apply it.
    this.clock.at(durationMs + 1000, () => this.finalWrite(0));

    const end = durationMs + settleMs;
    let steps = 0;
    while (!this.violation && !this.converged && this.clock.peekTime() <= end) {
      try {
        this.clock.step();
      } catch (err) {
        this.fail(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
      }
      steps++;
    }
    if (!this.violation && !this.finalWriteDone) this.fail(`liveness: no write committed within ${settleMs - 1000} ms after the network healed`);
    if (!this.violation && !this.converged) this.fail(`liveness: members did not all apply index ${this.finalIndex}: ${this.lagging().join(', ')}`);
    if (!this.violation) {
      const lin = checkHistory(this.history.filter((o) => !this.discarded.has(o)));
      if (lin.ok === false) {
        const why = explainViolation(lin.ops);
        this.fail(
          `linearizability: history of register ${lin.key} (${lin.ops.length} ops) stops being linearizable at ${why.atTime} ms; ` +
            `the operations up to then:\n${formatHistory(why.ops)}`,
        );
      }
    }
    return {
      seed: this.opts.seed,
      ok: !this.violation,
      error: this.violation ?? undefined,
      trace: this.violation ? this.trace : undefined,
      steps,
      simMs: this.clock.nowMs,
      committed: this.inv.maxCommitted,
      ops: this.history.length,
      crashes: this.crashes,
      leaders: this.leaderChanges,
    };
  }

  private finalWrite(attempt: number): void {
    if (this.violation || this.finalWriteDone) return;
    const retry = () => this.clock.after(100, () => this.finalWrite(attempt + 1));
    const l = this.leaderHost();
    if (!l) return void retry();
    const value = `final-${attempt}`;
    const op: Operation = { client: 99, key: 'x', kind: 'write', value, call: this.clock.nowMs, ret: Infinity };
    this.history.push(op);
    l.submit(encodeWrite('x', value), (err) => {
      if (err) return retry();
      op.ret = this.clock.nowMs;
      this.finalWriteDone = true;
      this.finalIndex = l.status.applied;
      this.log(`final write committed, index ${this.finalIndex}`);
      const check = () => {
        if (this.lagging().length === 0) this.converged = true;
        else this.clock.after(100, check);
      };
      check();
    });
  }

  /** Running members (in the newest leader's configuration) that have not applied finalIndex. */
  private lagging(): string[] {
    const l = this.leaderHost();
    if (!l) return ['(no leader)'];
    const conf = l.status.conf;
    const out: string[] = [];
    for (const id of [...conf.voters, ...conf.learners]) {
      const h = this.nodes.get(id)!.host;
      if (!h) out.push(`${id} down`);
      else if (h.status.applied < this.finalIndex) out.push(`${id} at ${h.status.applied}`);
    }
    return out;
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

export function replayCommand(seed: number): string {
  return `npm run sim -- --seeds 1 --seed ${seed}`;
}
