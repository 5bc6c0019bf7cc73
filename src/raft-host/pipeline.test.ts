import { afterEach, describe, expect, test } from 'bun:test';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CountingMachine, FsyncHookDisk } from './testkit.ts';
import { RaftHost } from './host.ts';
import { InMemoryTransport } from './memory-transport.ts';

// The pipelined persist step (group commit, fsync off the loop, a leader's appends before its own
// fsync) must never acknowledge a write that a quorum has not on disk. A disk whose background
// fsyncs the test holds back shows what waits for them.

/** The real disk, but a background fsync starts only while not held. */
class HeldDisk extends FsyncHookDisk {
  private held = false;
  private waiting: (() => void)[] = [];
  protected override aroundFsync(sync: (done: (err: Error | null) => void) => void, done: (err: Error | null) => void): void {
    const go = () => sync(done);
    if (this.held) this.waiting.push(go);
    else go();
  }
  hold(): void {
    this.held = true;
  }
  release(): void {
    this.held = false;
    for (const go of this.waiting.splice(0)) go();
  }
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

async function until(cond: () => boolean, what: string, boundMs = 10_000): Promise<void> {
  const deadline = performance.now() + boundMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function threeVoters() {
  const root = fs.mkdtempSync(join(tmpdir(), 'shoal-pipeline-'));
  cleanup.push(() => fs.rmSync(root, { recursive: true, force: true }));
  const hub = new InMemoryTransport();
  const ids = ['a', 'b', 'c'];
  const nodes = ids.map((id) => {
    const disk = new HeldDisk();
    const host = new RaftHost({ id, dir: join(root, id), disk, transport: hub.connect(id), stateMachine: new CountingMachine(), bootstrap: { voters: ids, learners: [] }, tickMs: 20 });
    host.start();
    cleanup.push(() => host.stop());
    return { id, disk, host };
  });
  await until(() => nodes.some((n) => n.host.status.role === 'leader'), 'a leader');
  const leader = nodes.find((n) => n.host.status.role === 'leader')!;
  const [f1, f2] = nodes.filter((n) => n !== leader);
  // One write through, so both followers are in replicate state.
  await leader.host.propose(new Uint8Array([1]));
  return { leader, f1: f1!, f2: f2! };
}

describe('pipelined persist', () => {
  test("two followers' fsyncs commit a proposal, and answer it, while the leader's own is held", async () => {
    const { leader, f1, f2 } = await threeVoters();
    leader.disk.hold();
    const index = leader.host.status.lastIndex + 1;
    const p = leader.host.propose(new Uint8Array([2]));
    p.catch(() => {}); // a failed assertion stops the hosts under it
    // Two followers are a quorum of three: it commits on their disks, as a slow leader disk cannot delay.
    await p;
    expect(leader.host.status.commit).toBeGreaterThanOrEqual(index);
    await until(() => f1.host.status.applied >= index && f2.host.status.applied >= index, 'the followers to apply it');
    leader.disk.release();
  });

  test("the leader's copy does not count toward the quorum before its fsync: one durable follower commits nothing", async () => {
    const { leader, f1, f2 } = await threeVoters();
    leader.disk.hold();
    f1.disk.hold();
    let answered = false;
    const index = leader.host.status.lastIndex + 1;
    const p = leader.host.propose(new Uint8Array([3])).then(() => (answered = true));
    p.catch(() => {}); // a failed assertion stops the hosts under it
    await until(() => (leader.host.status.progress[f2.id]?.match ?? 0) >= index, "f2's acknowledgement");
    // f2 alone has it durable; the leader's own copy is written, not fsynced.
    expect(leader.host.status.commit).toBeLessThan(index);
    expect(f1.host.status.lastIndex).toBeGreaterThanOrEqual(index); // f1 holds it, not yet durable, so it has not acknowledged
    expect(leader.host.status.progress[f1.id]?.match ?? 0).toBeLessThan(index);
    expect(answered).toBe(false);
    f1.disk.release();
    // f1 and f2 durable are a quorum: committed and answered with the leader's fsync still held.
    await p;
    expect(leader.host.status.commit).toBeGreaterThanOrEqual(index);
    leader.disk.release();
  });
});

describe('a follower with much to apply', () => {
  test('acknowledges what it was sent before it applies large committed entries, its fsync done on the loop', async () => {
    const root = fs.mkdtempSync(join(tmpdir(), 'shoal-pipeline-'));
    cleanup.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const hub = new InMemoryTransport();
    const ids = ['a', 'b', 'c'];
    // What each node sent as appendResp, and at each large apply whether it had acknowledged that entry.
    const acked = new Map<string, number>(ids.map((id) => [id, 0]));
    const ackedAtApply = new Map<string, boolean[]>(ids.map((id) => [id, []]));
    const nodes = ids.map((id) => {
      const disk = new HeldDisk();
      const inner = hub.connect(id);
      const transport = {
        ...inner,
        send: (msgs: Parameters<typeof inner.send>[0]) => {
          for (const m of msgs) if (m.type === 'appendResp' && !m.reject) acked.set(id, Math.max(acked.get(id)!, m.index ?? 0));
          inner.send(msgs);
        },
      };
      const machine = new CountingMachine();
      const apply = machine.apply.bind(machine);
      machine.apply = ((index: number, entry: Uint8Array) => {
        if (entry.length > 50_000) ackedAtApply.get(id)!.push(acked.get(id)! >= index);
        return apply();
      }) as typeof machine.apply;
      const host = new RaftHost({ id, dir: join(root, id), disk, transport, stateMachine: machine, bootstrap: { voters: ids, learners: [] }, tickMs: 20 });
      host.start();
      cleanup.push(() => host.stop());
      return { id, disk, host };
    });
    await until(() => nodes.some((n) => n.host.status.role === 'leader'), 'a leader');
    const leader = nodes.find((n) => n.host.status.role === 'leader')!;
    const [f1] = nodes.filter((n) => n !== leader);
    await leader.host.propose(new Uint8Array([1]));
    // f1's background fsyncs are held: its acknowledgement of the large entry can leave only if it syncs on the loop.
    f1!.disk.hold();
    await leader.host.propose(new Uint8Array(100_000));
    await until(() => ackedAtApply.get(f1!.id)!.length === 1, 'f1 to apply the large entry');
    expect(ackedAtApply.get(f1!.id)).toEqual([true]);
    f1!.disk.release();
  });
});
