import { afterEach, describe, expect, test } from 'bun:test';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftHost, type RaftHostOptions } from './host.ts';
import { InMemoryTransport } from './memory-transport.ts';
import { noPeers as noPeersForTest } from './no-peers.ts';
import { NotLeaderError, OutcomeUnknownError, type StateMachine, UnreadableEntryError } from './proposer.ts';
import type { Message } from '../raft/index.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

class ListMachine implements StateMachine {
  items: string[] = [];
  /** The `local` each apply was handed, in order (undefined where none). */
  locals: unknown[] = [];
  apply(_index: number, entry: Uint8Array, local?: unknown): unknown {
    this.locals.push(local);
    this.items.push(dec.decode(entry));
    return this.items.length;
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.items));
  }
  restore(snapshot: Uint8Array): void {
    this.items = JSON.parse(dec.decode(snapshot));
  }
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

function tempDir(): string {
  const d = fs.mkdtempSync(join(tmpdir(), 'shoal-host-'));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Waits for a condition, polling on the event loop, with a bound. */
async function until(cond: () => boolean, what: string, boundMs = 10_000): Promise<void> {
  const deadline = performance.now() + boundMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function cluster(ids: string[], extra: Partial<RaftHostOptions> = {}) {
  const hub = new InMemoryTransport();
  const root = tempDir();
  const hosts = new Map<string, { host: RaftHost; sm: ListMachine }>();
  const make = (id: string, bootstrap: boolean) => {
    const sm = new ListMachine();
    const host = new RaftHost({
      id,
      dir: join(root, id),
      transport: hub.connect(id),
      stateMachine: sm,
      bootstrap: bootstrap ? { voters: ids, learners: [] } : undefined,
      tickMs: 20,
      ...extra,
    });
    host.start();
    cleanup.push(() => host.stop());
    hosts.set(id, { host, sm });
    return { host, sm };
  };
  for (const id of ids) make(id, true);
  const leader = () => [...hosts.values()].find((h) => h.host.status.role === 'leader')?.host;
  /** Proposes on whoever leads, retrying (bounded) across elections: timers run late on a loaded machine. */
  const propose = async (text: string): Promise<unknown> => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const l = leader();
      if (l) {
        try {
          return await l.propose(enc.encode(text));
        } catch (err) {
          if (!(err instanceof NotLeaderError)) throw err;
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no leader accepted ${text}`);
  };
  return { hub, hosts, make, leader, root, propose };
}

describe('RaftHost', () => {
  test('a single voter commits on its own fsync and survives a restart', async () => {
    const c = cluster(['solo']);
    const { host, sm } = c.hosts.get('solo')!;
    await until(() => host.status.role === 'leader', 'solo to lead');
    expect(await host.propose(enc.encode('a'))).toBe(1);
    expect(await host.propose(enc.encode('b'))).toBe(2);
    expect(sm.items).toEqual(['a', 'b']);
    expect(await host.linearizableRead()).toBeGreaterThanOrEqual(host.status.applied - 1);
    host.stop();
    const again = c.make('solo', true);
    await until(() => again.sm.items.length === 2, 'replay after restart');
    expect(again.sm.items).toEqual(['a', 'b']);
  });

  test('a lone voter leads without waiting for a tick, on its first start and after a restart', async () => {
    // Timers that never tick: leadership can only come from the campaign at start.
    const noTicks = { every: () => () => {}, defer: (fn: () => void) => void setImmediate(fn) };
    const dir = join(tempDir(), 'solo');
    const open = () => {
      const sm = new ListMachine();
      const host = new RaftHost({ id: 'solo', dir, transport: noPeersForTest, stateMachine: sm, bootstrap: { voters: ['solo'], learners: [] }, timers: noTicks });
      host.start();
      cleanup.push(() => host.stop());
      return { host, sm };
    };
    const first = open();
    expect(first.host.status.role).toBe('leader');
    expect(await first.host.propose(enc.encode('a'))).toBe(1);
    first.host.stop();
    const second = open();
    expect(second.host.status.role).toBe('leader');
    expect(second.sm.items).toEqual(['a']); // the committed log is applied during start()
    expect(await second.host.propose(enc.encode('b'))).toBe(2);
    await second.host.readBarrier();
    expect(second.sm.items).toEqual(['a', 'b']);
  });

  test('an entry the state machine cannot read halts the host; one it refuses does not', async () => {
    const sm = new (class extends ListMachine {
      override apply(index: number, entry: Uint8Array): unknown {
        const s = dec.decode(entry);
        if (s === 'unreadable') throw new UnreadableEntryError('cannot read it');
        if (s === 'refused') throw new Error('refused');
        return super.apply(index, entry);
      }
    })();
    const fatal: Error[] = [];
    const host = new RaftHost({ id: 'solo', dir: join(tempDir(), 'solo'), transport: noPeersForTest, stateMachine: sm, bootstrap: { voters: ['solo'], learners: [] }, onFatal: (e) => fatal.push(e) });
    host.start();
    cleanup.push(() => host.stop());
    expect(await host.propose(enc.encode('a'))).toBe(1);
    await expect(host.propose(enc.encode('refused'))).rejects.toThrow('refused');
    expect(await host.propose(enc.encode('b'))).toBe(2);
    const lost = host.propose(enc.encode('unreadable')).then(() => null, (e: unknown) => e);
    await until(() => fatal.length > 0, 'the host to halt');
    expect(fatal[0]).toBeInstanceOf(UnreadableEntryError);
    expect(await lost).toBeInstanceOf(Error);
    await expect(host.propose(enc.encode('c'))).rejects.toThrow();
    expect(sm.items).toEqual(['a', 'b']);
  });

  test('a follower counts the time that passed, not the timer calls, only while its leader is unreachable', () => {
    // 'a' hears from leader 'b', then its tick timer is called twice, 10 s apart: a busy loop.
    const run = (reachable: ((id: string) => boolean) | null) => {
      let fire = () => {};
      let now = 0;
      let deliver: (m: Message) => void = () => {};
      const sent: Message[] = [];
      const transport = {
        send: (msgs: Message[]) => void sent.push(...msgs),
        onMessage: (h: (m: Message) => void) => { deliver = h; return () => {}; },
        ...(reachable ? { reachable } : {}),
      };
      const timers = { every: (_ms: number, fn: () => void) => { fire = fn; return () => {}; }, defer: () => {}, now: () => now };
      const host = new RaftHost({ id: 'a', dir: join(tempDir(), 'a'), transport, stateMachine: new ListMachine(), bootstrap: { voters: ['a', 'b', 'c'], learners: [] }, timers, electionTicks: 10 });
      host.start();
      cleanup.push(() => host.stop());
      deliver({ type: 'heartbeat', from: 'b', to: 'a', term: 1, commit: 0 });
      host.drain();
      expect(host.status.leader).toBe('b');
      for (let i = 0; i < 2; i++) {
        now += 10_000;
        fire();
        host.drain();
      }
      return [...new Set(sent.filter((m) => m.type === 'preVote').map((m) => m.to))].sort();
    };
    expect(run(null)).toEqual([]); // a transport that cannot tell: one tick a call
    expect(run(() => true)).toEqual([]); // the leader's link is up: one tick a call
    expect(run((id) => id !== 'b')).toEqual(['b', 'c']); // its link is down: 20 s counted, a pre-vote
  });

  test('the snapshot interval may be a function, asked each time', async () => {
    let interval = 1_000;
    const c = cluster(['solo'], { snapshotInterval: () => interval, snapshotTailEntries: 2 });
    const { host } = c.hosts.get('solo')!;
    await until(() => host.status.role === 'leader', 'solo to lead');
    for (let i = 0; i < 10; i++) await host.propose(enc.encode(`e${i}`));
    expect(host.status.snapshotIndex).toBe(0);
    interval = 5;
    await host.propose(enc.encode('e10'));
    expect(host.status.snapshotIndex).toBeGreaterThan(0);
    host.stop();
    const again = c.make('solo', true);
    await again.host.readBarrier();
    expect(again.sm.items).toHaveLength(11);
    expect(again.sm.items[10]).toBe('e10');
  });

  test('three voters replicate, batch concurrent proposals and refuse on followers', async () => {
    const c = cluster(['a', 'b', 'c']);
    await until(() => !!c.leader(), 'a leader');
    const leader = c.leader()!;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => leader.propose(enc.encode(`p${i}`))));
    expect(new Set(results).size).toBe(200);
    for (const { sm } of c.hosts.values()) await until(() => sm.items.length === 200, 'replication');
    const follower = [...c.hosts.values()].find((h) => h.host !== leader)!.host;
    const err = await follower.propose(enc.encode('x')).catch((e) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leader).toBe(leader.id);
    // Reads work on followers too (forwarded ReadIndex).
    expect(await follower.linearizableRead()).toBeGreaterThanOrEqual(200);
  });

  test('membership: add a learner, promote it, transfer leadership to it, remove the old leader', async () => {
    const c = cluster(['a', 'b', 'c']);
    await until(() => !!c.leader(), 'a leader');
    const leader = c.leader()!;
    await leader.propose(enc.encode('before'));
    const d = c.make('d', false);
    await leader.addLearner('d');
    await until(() => d.sm.items.includes('before'), 'learner catch-up');
    const conf = await leader.promote('d');
    expect(conf.voters).toContain('d');
    // The transfer's answer is bounded by three election timeouts of 20 ms ticks; on a loaded host
    // it can come after that ("it may still take effect"), so ask again until d leads.
    for (let attempt = 0; attempt < 5 && d.host.status.role !== 'leader'; attempt++) {
      try {
        expect(await leader.transferLeadership('d')).toBe('d');
      } catch (err) {
        if (!(err instanceof OutcomeUnknownError) && !(err instanceof NotLeaderError)) throw err;
      }
    }
    await until(() => d.host.status.role === 'leader', 'd to lead');
    const after = await d.host.remove(leader.id);
    expect(after.voters).not.toContain(leader.id);
    expect(await d.host.propose(enc.encode('after'))).toBeGreaterThan(0);
  });

  test('snapshots compact the log and a restarted node restores from one', async () => {
    const c = cluster(['a', 'b', 'c'], { snapshotInterval: 50, snapshotTailEntries: 5, segmentBytes: 2048 });
    await until(() => !!c.leader(), 'a leader');
    for (let i = 0; i < 120; i++) await c.propose(`e${i}`);
    expect(c.leader()!.status.snapshotIndex).toBeGreaterThanOrEqual(100);
    const follower = [...c.hosts.entries()].find(([, h]) => h.host !== c.leader())!;
    follower[1].host.stop();
    const back = c.make(follower[0], true);
    await until(() => back.sm.items.length === 120, 'restored follower');
    expect(back.sm.items[119]).toBe('e119');
  });

  test('an aborted proposal rejects with the abort reason', async () => {
    const c = cluster(['solo']);
    const { host } = c.hosts.get('solo')!;
    await until(() => host.status.role === 'leader', 'solo to lead');
    const ac = new AbortController();
    ac.abort(new Error('client went away'));
    await expect(host.propose(enc.encode('x'), ac.signal)).rejects.toThrow('client went away');
  });

  test("a proposal's local value reaches its own replica's apply, never another's", async () => {
    const c = cluster(['a', 'b', 'c'], { forwardProposals: true });
    await until(() => !!c.leader() && [...c.hosts.values()].every((h) => h.host.status.leader === c.leader()!.id), 'a known leader');
    const leader = c.hosts.get(c.leader()!.id)!;
    const follower = [...c.hosts.values()].find((h) => h !== leader)!;
    const mine = { built: 'by the leader' };
    await leader.host.propose(enc.encode('x'), undefined, mine);
    await follower.host.propose(enc.encode('y'), undefined, 'by the follower');
    await leader.host.propose(enc.encode('z'));
    for (const { sm } of c.hosts.values()) await until(() => sm.items.length === 3, 'replication');
    expect(leader.sm.locals[0]).toBe(mine);
    expect(leader.sm.locals.slice(1)).toEqual([undefined, undefined]);
    expect(follower.sm.locals).toEqual([undefined, 'by the follower', undefined]);
    const third = [...c.hosts.values()].find((h) => h !== leader && h !== follower)!;
    expect(third.sm.locals).toEqual([undefined, undefined, undefined]);
  });

  test('with forwardProposals a follower sends its proposal to the leader and resolves once it applied it', async () => {
    const c = cluster(['a', 'b', 'c'], { forwardProposals: true });
    await until(() => !!c.leader() && [...c.hosts.values()].every((h) => h.host.status.leader === c.leader()!.id), 'a known leader');
    const follower = [...c.hosts.values()].find((h) => h.host !== c.leader())!;
    expect(await follower.host.propose(enc.encode('via-follower'))).toBe(1);
    expect(follower.sm.items).toEqual(['via-follower']);
    expect(c.leader()!.status.progress[follower.host.id]!.match).toBeGreaterThan(0);
  });

  test('a read sent to a leader that dies is asked again of the next leader, not left to time out', async () => {
    // The request bound is 40 s here: a read still waiting on the dead leader would outlast the check.
    const c = cluster(['a', 'b', 'c'], { forwardProposals: true, requestTimeoutTicks: 2_000 });
    await until(() => !!c.leader() && [...c.hosts.values()].every((h) => h.host.status.leader === c.leader()!.id), 'a known leader');
    const old = c.leader()!;
    c.hub.isolate(old.id);
    old.stop();
    const follower = [...c.hosts.values()].find((h) => h.host !== old)!.host;
    const read = follower.linearizableRead().then((i) => ({ index: i }), (err) => ({ err }));
    await until(() => !!c.leader() && c.leader() !== old, 'a new leader');
    let settled: { index?: number; err?: unknown } | null = null;
    void read.then((r) => (settled = r));
    await until(() => settled !== null, 'the read answered by the new leader', 15_000);
    expect(settled!.err).toBeUndefined();
    expect(settled!.index).toBeGreaterThan(0);
  });

  test('forceNewCluster: a survivor of a lost quorum leads alone with its log, and the cluster grows again', async () => {
    const c = cluster(['a', 'b', 'c'], { snapshotInterval: 20, snapshotTailEntries: 5 });
    await until(() => !!c.leader(), 'a leader');
    for (let i = 0; i < 30; i++) await c.propose(`e${i}`);
    const survivor = [...c.hosts.entries()].find(([, h]) => h.host !== c.leader())!;
    await until(() => survivor[1].sm.items.length === 30, 'the survivor to apply every write');
    for (const { host } of c.hosts.values()) host.stop();
    // Restarted without the flag, alone, it cannot lead: 2 of 3 voters are gone.
    const open = (force: boolean, forcedBefore?: { index: number; term: number }) => {
      const sm = new ListMachine();
      const host = new RaftHost({ id: survivor[0], dir: join(c.root, survivor[0]), transport: c.hub.connect(survivor[0]), stateMachine: sm, tickMs: 20, forwardProposals: true, forceNewCluster: force, forcedBefore });
      host.start();
      cleanup.push(() => host.stop());
      return { host, sm };
    };
    const stuck = open(false);
    expect(stuck.host.status.role).not.toBe('leader');
    expect(stuck.host.forcedOut).toEqual([]);
    stuck.host.stop();
    const forced = open(true);
    expect(forced.host.status.role).toBe('leader'); // at once, like any lone voter
    expect(forced.host.status.conf).toEqual({ voters: [survivor[0]], learners: [] });
    expect(forced.host.forcedOut.sort()).toEqual(['a', 'b', 'c'].filter((x) => x !== survivor[0]));
    const at = forced.host.forced!.at!;
    expect(forced.host.forced).toMatchObject({ kind: 'forced', previousInLog: false });
    expect(at.index).toBeGreaterThan(30); // after every entry it held (then the new leader's empty entry)
    expect(at.index).toBeLessThan(forced.host.status.lastIndex);
    await forced.host.readBarrier();
    expect(forced.sm.items).toEqual(Array.from({ length: 30 }, (_, i) => `e${i}`));
    expect(await forced.host.propose(enc.encode('after'))).toBe(31);
    // The forced configuration is in the log: a plain restart stays alone and leads.
    forced.host.stop();
    const again = open(false);
    expect(again.host.status.role).toBe('leader');
    expect(again.host.status.conf.voters).toEqual([survivor[0]]);
    await again.host.readBarrier();
    expect(again.sm.items.at(-1)).toBe('after');
    // It grows again: a new member joins as a learner, catches up (from a snapshot) and votes.
    const d = c.make('d', false);
    await again.host.addLearner('d');
    await until(() => d.sm.items.at(-1) === 'after', 'the new member to catch up');
    expect((await again.host.promote('d')).voters.sort()).toEqual([survivor[0], 'd'].sort());
    expect(await again.host.propose(enc.encode('two voters'))).toBe(32);
    await until(() => d.sm.items.at(-1) === 'two voters', 'replication to the new voter');

    // The flag again (left in a unit file): the recorded force is in the log and the cluster grew
    // since, so nothing is forced and the new voter stays.
    again.host.stop();
    const stale = open(true, at);
    expect(stale.host.forced).toEqual({ kind: 'forced-before', out: [], previousInLog: true });
    expect(stale.host.status.conf.voters.sort()).toEqual([survivor[0], 'd'].sort());
    await until(() => !!stale.host.status.leader, 'a leader of the two voters');
    expect(await stale.host.propose(enc.encode('still two'))).toBeGreaterThan(32);
    await until(() => d.sm.items.at(-1) === 'still two', 'd still a member');
    // A record of another log (a term this log never had at that index) is not this force.
    stale.host.stop();
    d.host.stop();
    const other = open(true, { index: at.index, term: at.term + 7 });
    expect(other.host.forced).toMatchObject({ kind: 'forced', out: ['d'], previousInLog: false });
    other.host.stop();
    // Alone already: nothing to write.
    const alone = open(true, other.host.forced!.at);
    expect(alone.host.forced).toEqual({ kind: 'alone', out: [], previousInLog: true });
    expect(alone.host.status.role).toBe('leader');
  });

  test('forceNewCluster on an empty log is refused, naming the directory', () => {
    const dir = join(tempDir(), 'empty');
    const host = new RaftHost({ id: 'x', dir, transport: noPeersForTest, stateMachine: new ListMachine(), forceNewCluster: true });
    expect(() => host.start()).toThrow(/holds no raft log of a cluster: there is nothing to recover/);
  });
});
