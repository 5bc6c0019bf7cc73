import { describe, expect, test } from 'bun:test';
import { ConflictError } from '../lib/errors.ts';
import { encodeEntry } from '../lib/codec.ts';
import { type MemoryStore, memoryStore, type Tx } from '../store/index.ts';
import { taskPatch } from '../store/patch.ts';
import type { Task } from '../types/index.ts';
import { ManualClock, type ObjectEvent, ReconcileStage, type StageOptions, writeAll, writeTasks } from './stage.ts';
import { makeService, makeTask, settle, turn, waitFor } from './testkit.ts';

class Counting extends ReconcileStage {
  readonly name = 'counting';
  passes = 0;
  failWith: (() => Error) | null = null;
  gate: Promise<void> | null = null;
  errors: unknown[] = [];
  constructor(opts: StageOptions) {
    super({ ...opts, onError: (_, e) => this.errors.push(e) });
  }
  protected interested(ev: ObjectEvent): boolean {
    return ev.table === 'services';
  }
  protected async reconcile(): Promise<void> {
    this.passes++;
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith();
  }
  poke(): void {
    this.kick();
  }
  schedule(ms: number, fn: () => void) {
    return this.later(ms, fn);
  }
  waitAtMost(until: (done: () => void) => () => void, ms: number, signal: AbortSignal) {
    return this.atMost(until, ms, signal);
  }
}

describe('ManualClock', () => {
  test('fires due timers in order, and not cancelled ones', () => {
    const c = new ManualClock(0);
    const seen: string[] = [];
    c.setTimer(20, () => seen.push('b'));
    c.setTimer(10, () => seen.push('a'));
    c.setTimer(15, () => seen.push('x')).cancel();
    c.advance(15);
    expect(seen).toEqual(['a']);
    expect(c.now()).toBe(15);
    c.advance(5);
    expect(seen).toEqual(['a', 'b']);
    expect(c.pending).toBe(0);
  });
});

describe('ReconcileStage', () => {
  test('a pass on start; events in one turn cause one more pass; uninteresting ones none', async () => {
    const store = memoryStore();
    const s = new Counting({ store, clock: new ManualClock() });
    s.start();
    await waitFor(() => s.passes === 1);
    await Promise.all([1, 2, 3].map((i) => store.update((tx) => tx.create('services', makeService(`s${i}`)))));
    await settle(store);
    expect(s.passes).toBe(2);
    await store.update((tx) => tx.create('nodes', { ...makeService('n'), Spec: {} } as never));
    await settle(store);
    expect(s.passes).toBe(2);
    await s.stop();
  });

  test('conflicts retry at once up to a bound, then back off on the clock; other errors are reported', async () => {
    const store = memoryStore();
    const clock = new ManualClock();
    const s = new Counting({ store, clock });
    s.failWith = () => new ConflictError('stale');
    s.start();
    await waitFor(() => s.passes === 20);
    for (let i = 0; i < 50; i++) await turn();
    expect(s.passes).toBe(20);
    expect(s.errors).toEqual([]);
    s.failWith = () => new Error('boom');
    clock.advance(100);
    await waitFor(() => s.errors.length === 1);
    for (let i = 0; i < 20; i++) await turn();
    expect(s.passes).toBe(21);
    expect(s.errors).toHaveLength(1);
    s.failWith = null;
    clock.advance(100);
    await waitFor(() => s.passes === 22);
    for (let i = 0; i < 20; i++) await turn();
    expect(s.passes).toBe(22);
    await s.stop();
  });

  test('stop() awaits the pass in flight, cancels timers, and no pass runs after it', async () => {
    const store = memoryStore();
    const clock = new ManualClock();
    const s = new Counting({ store, clock });
    let release!: () => void;
    s.gate = new Promise((r) => (release = r));
    s.start();
    await waitFor(() => s.passes === 1);
    let fired = false;
    s.schedule(10, () => (fired = true));
    let stopped = false;
    const stopping = s.stop().then(() => (stopped = true));
    await turn();
    expect(stopped).toBe(false);
    release();
    await stopping;
    s.poke();
    clock.advance(10);
    await settle(store);
    expect(fired).toBe(false);
    expect(s.passes).toBe(1);
    expect(clock.pending).toBe(0);
  });
});

/**
 * Routes the store's proposals through `gate` (given the proposal's number, from 1), before each is
 * proposed; counts the proposals and the most in flight at once.
 */
function gateProposals(store: MemoryStore, gate: (call: number) => Promise<void>): { most: number; calls: number } {
  const proposer = store.proposer!;
  const seen = { most: 0, calls: 0 };
  let inFlight = 0;
  store.proposer = {
    ...proposer,
    propose: async (entry, signal) => {
      seen.most = Math.max(seen.most, ++inFlight);
      try {
        await gate(++seen.calls);
        return await proposer.propose(entry, signal);
      } finally { inFlight--; }
    },
  };
  return seen;
}

describe('atMost', () => {
  const never = () => () => {};
  /** 'pending', or what the wait resolved to: true when the callback ended it. */
  async function outcome(p: Promise<boolean>): Promise<boolean | 'pending'> {
    let done: boolean | 'pending' = 'pending';
    void p.then((v) => { done = v; });
    for (let i = 0; i < 10; i++) await turn();
    return done;
  }

  test('ends at the callback (true), at the bound on the stage\'s clock or at the abort (false), and unsubscribes', async () => {
    const clock = new ManualClock();
    const s = new Counting({ store: memoryStore(), clock });
    let unsubscribed = 0;
    let call: () => void = () => {};
    const byCall = s.waitAtMost((done) => { call = done; return () => { unsubscribed++; }; }, 50, new AbortController().signal);
    expect(await outcome(byCall)).toBe('pending');
    call();
    expect(await outcome(byCall)).toBe(true);
    expect(unsubscribed).toBe(1);
    const byTimer = s.waitAtMost(never, 50, new AbortController().signal);
    clock.advance(49);
    expect(await outcome(byTimer)).toBe('pending');
    clock.advance(1);
    expect(await outcome(byTimer)).toBe(false);
    const ac = new AbortController();
    const byAbort = s.waitAtMost(never, 50, ac.signal);
    ac.abort();
    expect(await outcome(byAbort)).toBe(false);
  });

  test('a signal aborted before the wait ends it at once (the clock never moves)', async () => {
    const s = new Counting({ store: memoryStore(), clock: new ManualClock() });
    const ac = new AbortController();
    ac.abort();
    expect(await outcome(s.waitAtMost(never, 50, ac.signal))).toBe(false);
  });
});

describe('batched writes', () => {
  const tasks = (n: number) => Array.from({ length: n }, (_, i) => makeTask('svc', { Slot: i + 1, state: 'pending' }));

  test('writeTasks writes in batches of batchSize, halving those over the store\'s batch bound', async () => {
    const store = memoryStore();
    const ts = tasks(40);
    await store.update((tx) => { for (const t of ts) tx.create('tasks', t); });
    const sizes: number[] = [];
    store.watch((ev) => { if (ev.kind === 'commit') sizes.push(0); else if (ev.kind === 'update') sizes[sizes.length] = (sizes.pop() ?? 0) + 1; });
    const actions = ts.slice(0, 11).map((t) => taskPatch(store.get('tasks', t.ID)!, { ...store.get('tasks', t.ID)!, Labels: { l: '1' } }));
    store.maxBatchBytes = encodeEntry({ at: new Date().toISOString(), actions }).byteLength; // 11 tasks fit
    const changes = ts.map((t) => ({ id: t.ID, change: (cur: Task) => ({ ...cur, Labels: { l: '1' } }) }));
    expect(await writeTasks(store, changes, 30, undefined)).toBe(false);
    expect(ts.every((t) => store.get('tasks', t.ID)!.Labels?.l === '1')).toBe(true);
    const batches = sizes.filter((n) => n > 0);
    // The batches of 30 and 10 go together; 30 does not fit (30 → 15 → 8), 10 does.
    expect(batches.sort((a, b) => a - b)).toEqual([6, 8, 8, 8, 10]);
  });

  test('writeTasks proposes its batches together, not each after the last commit', async () => {
    const store = memoryStore();
    const ts = tasks(100);
    await store.update((tx) => { for (const t of ts) tx.create('tasks', t); });
    const held: (() => void)[] = [];
    // Nothing commits until every batch that is coming has been proposed.
    const seen = gateProposals(store, () => new Promise<void>((resolve) => held.push(resolve)));
    const changes = ts.map((t) => ({ id: t.ID, change: (cur: Task) => ({ ...cur, Labels: { l: '1' } }) }));
    const writing = writeTasks(store, changes, 10, undefined);
    await waitFor(() => held.length === 10);
    for (const go of held.splice(0)) go();
    expect(await writing).toBe(false);
    expect(seen.most).toBe(10);
    expect(ts.every((t) => store.get('tasks', t.ID)!.Labels?.l === '1')).toBe(true);
  });

  test('writeTasks keeps at most 16 batches in the log at once, and throws the first failure', async () => {
    const store = memoryStore();
    const ts = tasks(40);
    await store.update((tx) => { for (const t of ts) tx.create('tasks', t); });
    const seen = gateProposals(store, async (call) => {
      await turn();
      if (call === 3) throw new Error('no quorum');
    });
    const changes = ts.map((t) => ({ id: t.ID, change: (cur: Task) => ({ ...cur, Labels: { l: '1' } }) }));
    await expect(writeTasks(store, changes, 1, undefined)).rejects.toThrow('no quorum');
    expect(seen.most).toBe(16);
    // No batch is started after the failure: the 16 in flight end, and nothing more.
    expect(seen.calls).toBe(16);
  });

  test('writeAll writes everything in one transaction when it fits, else in order in as few as fit', async () => {
    const store = memoryStore();
    let commits = 0;
    store.watch((ev) => { if (ev.kind === 'commit') commits++; });
    const ts = tasks(20);
    await writeAll(store, ts.slice(0, 10).map((t) => (tx: Tx) => void tx.create('tasks', t)));
    expect(commits).toBe(1);
    // About 3 tasks fit.
    store.maxBatchBytes = encodeEntry({ at: new Date().toISOString(), actions: ts.slice(10, 13).map((object) => ({ op: 'create', table: 'tasks', object })) }).byteLength;
    await writeAll(store, ts.slice(10).map((t) => (tx: Tx) => void tx.create('tasks', t)));
    expect(commits).toBeGreaterThan(2);
    expect(store.size('tasks')).toBe(20);
  });
});
